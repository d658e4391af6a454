"""Building the paho-mqtt client from an `MqttConfig`: protocol, session, TLS and CONNECT properties."""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_sdk.transport.config import MqttConfig, TlsConfig
from edge_sdk.transport.errors import MqttConfigError


class PahoClient(mqtt.Client):
    """paho client that remembers why the last connection attempt failed.

    paho's `on_connect_fail` callback carries no exception, so the reason
    (refused, timed out, certificate verify failed) is kept here for the logs.
    NOTE: this overrides paho's private `_create_socket` (paho-mqtt 2.2); if a
    later paho renames it, only the failure detail is lost.
    """

    last_connect_error: BaseException | None = None

    def _create_socket(self) -> Any:
        try:
            sock = super()._create_socket()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return sock


def build_paho_client(cfg: MqttConfig) -> mqtt.Client:
    """Return a paho client set up from `cfg` (protocol, session, backoff, credentials, TLS), without callbacks."""
    client = PahoClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=cfg.client_id,
        protocol=mqtt.MQTTv5 if cfg.is_v5 else mqtt.MQTTv311,
        transport=cfg.transport,
        clean_session=None if cfg.is_v5 else cfg.clean_start,
        manual_ack=cfg.manual_ack,
    )
    client.suppress_exceptions = True
    client.reconnect_delay_set(cfg.reconnect_min_delay, cfg.reconnect_max_delay)  # type: ignore[arg-type]
    client.connect_timeout = cfg.connect_timeout
    # The sender thread enforces inflight_window. paho's own limit stays off (0) because paho 2.2
    # stops resending after a reconnect at the first message it had queued over its limit.
    client.max_inflight_messages_set(0)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls is not None:
        apply_tls(client, cfg.tls)
    return client


def apply_tls(client: mqtt.Client, tls: TlsConfig) -> None:
    """Load the CA, client certificate and key into an SSL context on `client`; raise MqttConfigError naming the files."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file)
        if tls.cert_file is not None:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise MqttConfigError(
            f"TLS files could not be loaded (ca_file={tls.ca_file!r}, cert_file={tls.cert_file!r}, "
            f"key_file={tls.key_file!r}): {exc}; check that they are PEM files and that the key matches the certificate"
        ) from exc
    if tls.insecure:
        context.check_hostname = False
    client.tls_set_context(context)


def connect_properties(config: MqttConfig) -> Properties | None:
    """Return the MQTT 5 CONNECT properties (session expiry), or None under 3.1.1."""
    if not config.is_v5:
        return None
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0 if config.clean_start else config.session_expiry
    return properties
