"""MqttClient over TLS against a real Mosquitto TLS listener with certificates made by openssl."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig, TlsConfig
from edge_sdk.transport.errors import MqttConfigError
from tests.broker import find_mosquitto
from tests.broker import MosquittoBroker
from tests.transport.helpers import FAST_RECONNECT

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1", "-subj", f"/CN={name}", cwd=folder)


def _make_signed(folder: Path, name: str, ca: str, san: str | None) -> None:
    _openssl("req", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=folder)
    extra: list[str] = []
    if san is not None:
        (folder / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "1", *extra, cwd=folder)


class TlsBroker(MosquittoBroker):
    """Mosquitto whose only listener speaks TLS and requires a client certificate signed by the test CA."""

    certs: Path

    def _write_config(self) -> None:
        super()._write_config()
        certs = self.workdir.parent / "certs"
        with self.config_path.open("a") as config:
            config.write(
                f"cafile {certs / 'ca.pem'}\ncertfile {certs / 'server.pem'}\nkeyfile {certs / 'server.key'}\n"
                "require_certificate true\n"
            )


@pytest.fixture
def tls_setup(tmp_path: Path):
    if shutil.which("openssl") is None or find_mosquitto() is None:
        pytest.skip("needs the openssl command and mosquitto")
    certs = tmp_path / "certs"
    certs.mkdir()
    _make_ca(certs, "ca")
    _make_ca(certs, "other-ca")
    _make_signed(certs, "server", "ca", "IP:127.0.0.1")
    _make_signed(certs, "client", "ca", None)
    broker = TlsBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker, certs
    broker.stop()


def test_client_tls_with_client_certificate(tls_setup) -> None:
    broker, certs = tls_setup
    tls = TlsConfig(ca_file=str(certs / "ca.pem"), cert_file=str(certs / "client.pem"), key_file=str(certs / "client.key"))
    received: list[InboundMessage] = []
    done = threading.Event()
    subscriber = MqttClient(MqttConfig(host=broker.host, port=broker.port, client_id="tls-sub", tls=tls))
    subscriber.subscribe("fleet/+/results", lambda m: (received.append(m), done.set()))
    publisher = MqttClient(MqttConfig(host=broker.host, port=broker.port, client_id="tls-pub", tls=tls))
    with subscriber, publisher:
        assert subscriber.wait_ready(10), subscriber.stats()["last_error"]
        publisher.publish("fleet/car-1/results", b'{"over": "tls"}')
        assert done.wait(10)
    assert received[0].payload == b'{"over": "tls"}'
    assert publisher.stats()["acked"] == 1


def test_client_tls_unknown_ca_reports_failure(tls_setup) -> None:
    broker, certs = tls_setup
    tls = TlsConfig(ca_file=str(certs / "other-ca.pem"), cert_file=str(certs / "client.pem"), key_file=str(certs / "client.key"))
    client = MqttClient(MqttConfig(host=broker.host, port=broker.port, client_id="tls-wrong-ca", tls=tls, **FAST_RECONNECT))
    client.start()
    assert not client.wait_connected(1.5)
    stats = client.stats()
    assert stats["connect_failures"] >= 1
    assert "cannot reach broker" in stats["last_error"]
    assert "certificate verify failed" in stats["last_error"]
    assert client.stop(5)


def test_client_tls_key_not_matching_certificate(tls_setup) -> None:
    broker, certs = tls_setup
    tls = TlsConfig(ca_file=str(certs / "ca.pem"), cert_file=str(certs / "client.pem"), key_file=str(certs / "server.key"))
    with pytest.raises(MqttConfigError) as info:
        MqttClient(MqttConfig(host=broker.host, port=broker.port, client_id="tls-bad-key", tls=tls))
    assert "key matches the certificate" in str(info.value)
    assert "client.pem" in str(info.value)
