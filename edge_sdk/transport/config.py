"""Connection settings of `MqttClient`: a typed, validated `MqttConfig`.

Build one directly, from a URL (`MqttConfig.from_url("mqtts://user:pw@host:8883?client_id=car-7")`)
or from a mapping read out of a TOML/YAML file (`MqttConfig.from_dict(section, key="mqtt")`).
Every error is an `MqttConfigError` naming the key and the value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from edge_sdk.transport.errors import MqttConfigError
from edge_sdk.transport.topics import MessageKind

PROTOCOLS = ("5", "3.1.1")
TRANSPORTS = ("tcp", "websockets")
_URL_SCHEMES = {
    "mqtt": ("tcp", False, 1883),
    "tcp": ("tcp", False, 1883),
    "mqtts": ("tcp", True, 8883),
    "ssl": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}
_URL_QUERY_KEYS = ("client_id", "protocol", "keepalive")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS settings; `ca_file` None means the system's trusted CAs. `insecure` skips the host name check (tests only)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is None:
                continue
            path = Path(value)
            if not path.is_file():
                raise MqttConfigError(f"tls.{name} {value!r} not found: give the path of a PEM file or remove the key")
            if not os.access(path, os.R_OK):
                raise MqttConfigError(f"tls.{name} {value!r} is not readable by this user: fix its permissions")
        if self.key_file is not None and self.cert_file is None:
            raise MqttConfigError(f"tls.key_file {self.key_file!r} is set without tls.cert_file: a client key needs its certificate")


def _default_qos() -> dict[str, int]:
    return {kind.value: 1 for kind in MessageKind}


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Broker address, identity, session and delivery settings.

    Units: seconds for every time. `qos` maps a `MessageKind` value to a QoS
    used when `publish` gets no explicit QoS. With `clean_start` false the
    broker keeps the session (subscriptions and queued QoS >= 1 messages) for
    `session_expiry` seconds after a disconnect (MQTT 5) or until its own
    expiry setting (3.1.1); that needs a fixed `client_id`. `status_topic`
    enables the retained presence messages (birth "online", last will and
    clean-stop "offline"), stamped with `sender_id`. `max_payload_bytes`
    should match the broker's `message_size_limit`: `publish` rejects a larger
    payload, because Mosquitto drops the connection of an MQTT 5 client that
    sends one, and paho would send it again after every reconnect.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    transport: str = "tcp"
    protocol: str = "5"
    client_id: str = ""
    keepalive: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsConfig | None = None
    qos: Mapping[str, int] = field(default_factory=_default_qos)
    clean_start: bool = True
    session_expiry: int = 3600
    status_topic: str | None = None
    sender_id: str = ""
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    connect_timeout: float = 5.0
    inflight_window: int = 32
    manual_ack: bool = False
    max_payload_bytes: int | None = None

    def __post_init__(self) -> None:
        self._check_address()
        self._check_timing()
        merged = _default_qos()
        for kind, value in dict(self.qos).items():
            if kind not in merged:
                raise MqttConfigError(f"qos.{kind} is not a message kind: use one of {', '.join(merged)}")
            if value not in (0, 1, 2) or isinstance(value, bool):
                raise MqttConfigError(f"qos.{kind} = {value!r} is invalid: QoS is 0, 1 or 2")
            merged[kind] = value
        object.__setattr__(self, "qos", merged)
        if not self.clean_start and not self.client_id:
            raise MqttConfigError("clean_start = false needs a fixed client_id, because the broker finds a kept session by client id")
        if self.status_topic is not None and not self.sender_id:
            raise MqttConfigError(f"status_topic {self.status_topic!r} is set but sender_id is empty: set the vehicle or worker id")
        if self.password is not None and self.username is None:
            raise MqttConfigError("password is set without username: MQTT sends a password only with a user name")

    def _check_address(self) -> None:
        if not self.host or not isinstance(self.host, str):
            raise MqttConfigError(f"host {self.host!r} is invalid: give a host name or IP address")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise MqttConfigError(f"port {self.port!r} is invalid: use an integer from 1 to 65535")
        if self.transport not in TRANSPORTS:
            raise MqttConfigError(f"transport {self.transport!r} is invalid: use one of {', '.join(TRANSPORTS)}")
        if isinstance(self.protocol, (int, float)) and not isinstance(self.protocol, bool):
            raise MqttConfigError(f"protocol {self.protocol!r} is invalid: write \"5\" or \"3.1.1\" (a string, in quotes)")
        if self.protocol not in PROTOCOLS:
            raise MqttConfigError(f"protocol {self.protocol!r} is invalid: use \"5\" or \"3.1.1\"")

    def _check_timing(self) -> None:
        checks = (
            ("keepalive", self.keepalive, 1),
            ("session_expiry", self.session_expiry, 0),
            ("reconnect_min_delay", self.reconnect_min_delay, 0.01),
            ("connect_timeout", self.connect_timeout, 0.01),
            ("inflight_window", self.inflight_window, 1),
            ("max_payload_bytes", 1 if self.max_payload_bytes is None else self.max_payload_bytes, 1),
        )
        for name, value, minimum in checks:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise MqttConfigError(f"{name} = {value!r} is invalid: it must be a number >= {minimum}")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise MqttConfigError(
                f"reconnect_max_delay = {self.reconnect_max_delay!r} is below reconnect_min_delay = {self.reconnect_min_delay!r}"
            )

    @property
    def is_v5(self) -> bool:
        return self.protocol == "5"

    @property
    def address(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def qos_for(self, kind: MessageKind | None) -> int:
        """Return the configured QoS of a message kind; 1 for topics outside the edge-sdk layout."""
        if kind is None:
            return 1
        return self.qos[MessageKind(kind).value]

    def replace(self, **changes: Any) -> MqttConfig:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConfig:
        """Parse `mqtt[s]://[user[:password]@]host[:port][?client_id=..&protocol=3.1.1&keepalive=30]`.

        `mqtts`/`wss` turn TLS on with the system CAs unless `tls` is given in
        `overrides`; other keyword arguments set any other field.
        """
        return cls(**{**_fields_from_url(url), **overrides})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "mqtt") -> MqttConfig:
        """Build from a config-file section; `key` prefixes the key names in error messages.

        Accepts every field name, plus `url` (parsed first, other keys override
        it) and a `tls` table with `ca_file`, `cert_file`, `key_file`, `insecure`.
        """
        if not isinstance(data, Mapping):
            raise MqttConfigError(f"{key} must be a table of settings, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} | {"url"}
        for name in data:
            if name not in known:
                raise MqttConfigError(f"{key}.{name} is not an MQTT setting: use one of {', '.join(sorted(known))}")
        values = dict(data)
        fields_: dict[str, Any] = _fields_from_url(values.pop("url")) if "url" in values else {}
        tls = values.pop("tls", None)
        if tls is not None:
            fields_["tls"] = _tls_from_dict(tls, f"{key}.tls")
        fields_.update(values)
        try:
            return cls(**fields_)
        except MqttConfigError as exc:
            raise MqttConfigError(f"{key}: {exc}") from exc
        except TypeError as exc:
            raise MqttConfigError(f"{key}: {exc}") from exc


def _tls_from_dict(data: Any, key: str) -> TlsConfig:
    if data is True:
        return TlsConfig()
    if not isinstance(data, Mapping):
        raise MqttConfigError(f"{key} must be a table (ca_file, cert_file, key_file, insecure) or true, got {data!r}")
    allowed = {f.name for f in dataclasses.fields(TlsConfig)}
    for name in data:
        if name not in allowed:
            raise MqttConfigError(f"{key}.{name} is not a TLS setting: use one of {', '.join(sorted(allowed))}")
    try:
        return TlsConfig(**dict(data))
    except MqttConfigError as exc:
        raise MqttConfigError(f"{key.rsplit('.', 1)[0]}.{exc}") from exc


def _redact(url: str) -> str:
    """Hide the password of a broker URL so it can appear in messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def _fields_from_url(raw_url: str) -> dict[str, Any]:
    url = _redact(raw_url)
    try:
        parts = urlsplit(raw_url)
        port = parts.port
    except ValueError as exc:
        raise MqttConfigError(f"broker URL {url!r} is invalid ({exc}): use mqtt://host:1883 or mqtts://host:8883") from exc
    # urlsplit reads "broker:1883" as scheme "broker", so a URL without "://" has no scheme at all.
    if not parts.scheme or "://" not in raw_url:
        raise MqttConfigError(f"broker URL {url!r} has no scheme: write mqtt://HOST:PORT (or mqtts:// for TLS)")
    if parts.scheme not in _URL_SCHEMES:
        raise MqttConfigError(f"broker URL {url!r} has scheme {parts.scheme!r}: use one of {', '.join(_URL_SCHEMES)}")
    if not parts.hostname:
        raise MqttConfigError(f"broker URL {url!r} has no host: use mqtt://host:1883")
    transport, use_tls, default_port = _URL_SCHEMES[parts.scheme]
    fields_: dict[str, Any] = {"host": parts.hostname, "port": port or default_port, "transport": transport}
    if use_tls:
        fields_["tls"] = TlsConfig()
    if parts.username:
        fields_["username"] = unquote(parts.username)
    if parts.password:
        fields_["password"] = unquote(parts.password)
    for name, values in parse_qs(parts.query).items():
        if name not in _URL_QUERY_KEYS:
            raise MqttConfigError(f"broker URL {url!r} has query key {name!r}: use only {', '.join(_URL_QUERY_KEYS)}")
        fields_[name] = values[-1]
    if "keepalive" in fields_:
        try:
            fields_["keepalive"] = int(fields_["keepalive"])
        except ValueError as exc:
            raise MqttConfigError(f"broker URL {url!r} has keepalive={fields_['keepalive']!r}: use whole seconds") from exc
    return fields_
