"""MqttConfig parsing and validation, including TLS file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_sdk.transport.client import MqttClient
from edge_sdk.transport.config import MqttConfig, TlsConfig
from edge_sdk.transport.errors import MqttConfigError
from edge_sdk.transport.topics import MessageKind


def test_config_from_url_plain() -> None:
    config = MqttConfig.from_url("mqtt://broker.local?client_id=car-7&protocol=3.1.1&keepalive=15")
    assert (config.host, config.port, config.tls) == ("broker.local", 1883, None)
    assert config.client_id == "car-7"
    assert config.protocol == "3.1.1"
    assert config.keepalive == 15


def test_config_from_url_tls_and_credentials() -> None:
    config = MqttConfig.from_url("mqtts://fleet%40eu:s3cr%2Ft@broker.local")
    assert config.port == 8883
    assert config.tls == TlsConfig()
    assert config.username == "fleet@eu"
    assert config.password == "s3cr/t"
    assert "s3cr" not in repr(config)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://broker", "scheme"),
        ("mqtt://", "no host"),
        ("mqtt://broker:99999", "invalid"),
        ("mqtt://broker?colour=red", "query key"),
        ("mqtt://broker?keepalive=soon", "keepalive"),
    ],
)
def test_config_from_url_rejects_bad_url(url: str, match: str) -> None:
    with pytest.raises(MqttConfigError, match=match):
        MqttConfig.from_url(url)


def test_config_error_hides_password() -> None:
    with pytest.raises(MqttConfigError) as info:
        MqttConfig.from_url("mqtt://user:hunter2@broker?colour=red")
    assert "hunter2" not in str(info.value)


def test_config_missing_ca_file_names_file(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(MqttConfigError) as info:
        MqttConfig.from_dict({"host": "broker", "tls": {"ca_file": str(missing)}})
    message = str(info.value)
    assert "mqtt.tls.ca_file" in message
    assert str(missing) in message
    assert "not found" in message


def test_config_key_without_cert_is_rejected(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("not used")
    with pytest.raises(MqttConfigError, match="cert_file"):
        TlsConfig(key_file=str(key))


def test_config_invalid_ca_pem_is_clear(tmp_path: Path) -> None:
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    config = MqttConfig(tls=TlsConfig(ca_file=str(bad_ca)))
    with pytest.raises(MqttConfigError) as info:
        MqttClient(config)
    assert str(bad_ca) in str(info.value)
    assert "PEM" in str(info.value)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"hots": "broker"}, "mqtt.hots"),
        ({"qos": {"results": 3}}, "qos.results"),
        ({"qos": {"photos": 1}}, "qos.photos"),
        ({"protocol": "4"}, "protocol"),
        ({"clean_start": False}, "client_id"),
        ({"status_topic": "fleet/car/status"}, "sender_id"),
        ({"keepalive": 0}, "keepalive"),
        ({"tls": {"ca": "x"}}, "mqtt.tls.ca"),
        ({"password": "x"}, "username"),
    ],
)
def test_config_from_dict_names_bad_key(section: dict[str, object], match: str) -> None:
    with pytest.raises(MqttConfigError, match=match):
        MqttConfig.from_dict(section)


def test_config_qos_per_kind_merges_defaults() -> None:
    config = MqttConfig.from_dict({"url": "mqtt://broker:1999", "qos": {"status": 0, "events": 2}})
    assert config.port == 1999
    assert config.qos_for(MessageKind.STATUS) == 0
    assert config.qos_for(MessageKind.EVENTS) == 2
    assert config.qos_for(MessageKind.RESULTS) == 1
    assert config.qos_for(None) == 1


@pytest.mark.parametrize("url", ["broker", "127.0.0.1:1883", "broker:1883"])
def test_config_from_url_without_scheme(url: str) -> None:
    with pytest.raises(MqttConfigError) as info:
        MqttConfig.from_url(url)
    message = str(info.value)
    assert repr(url) in message
    assert "has no scheme: write mqtt://HOST:PORT" in message


def test_config_numeric_protocol_asks_for_string() -> None:
    with pytest.raises(MqttConfigError) as info:
        MqttConfig.from_dict({"host": "broker", "protocol": 5})
    message = str(info.value)
    assert "protocol 5 is invalid" in message
    assert 'write "5" or "3.1.1" (a string' in message
