"""MqttClient against a real Mosquitto broker: delivery, presence, subscriptions, priorities, failures."""

from __future__ import annotations

import json
import time
import threading
from pathlib import Path

import pytest

from edge_sdk.transport.client import Delivery, InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import EnvelopeBuilder, parse_envelope
from edge_sdk.transport.spool import Spool
from edge_sdk.transport.errors import PayloadError, TopicError, TransportError
from edge_sdk.transport.topics import MessageKind, Topics, fleet_filter
from tests.broker import free_port
from tests.broker import MosquittoBroker
from tests.transport.helpers import FAST_RECONNECT, Collector

PROTOCOLS = ["5", "3.1.1"]


def _publisher(url: str, spool: Spool | None = None, **config: object) -> MqttClient:
    topics = Topics("fleet", "car-1")
    settings = {"client_id": "pub-car-1", "status_topic": topics.status, "sender_id": "car-1", **FAST_RECONNECT, **config}
    return MqttClient(MqttConfig.from_url(url, **settings), spool)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_delivers_results_in_order(mosquitto, tmp_path: Path, protocol: str) -> None:
    topics = Topics("fleet", "car-1")
    builder = EnvelopeBuilder("car-1")
    acks: list[Delivery] = []
    with Collector(mosquitto.url, topics.results, protocol=protocol) as collector:
        publisher = _publisher(mosquitto.url, Spool(tmp_path / "spool.db"), protocol=protocol)
        publisher.on_ack = acks.append
        with publisher:
            for index in range(300):
                publisher.publish(topics.results, builder.build(MessageKind.RESULTS, {"index": index}))
            assert publisher.wait_drained(20)
            assert collector.wait_for(lambda got: len(got) >= 300, 20)
            stats = publisher.stats()
        assert [e.body["index"] for e in collector.envelopes] == list(range(300))
        assert stats["acked"] == 300
        assert stats["spool_depth"] == 0
        assert stats["ack_latency_ms"]["count"] == 300
        assert len(acks) == 300
        assert {a.kind for a in acks} == {"results"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_presence_online_then_offline(mosquitto, protocol: str) -> None:
    topics = Topics("fleet", "car-1")
    with Collector(mosquitto.url, topics.status, protocol=protocol) as collector:
        publisher = _publisher(mosquitto.url, protocol=protocol)
        publisher.start()
        assert collector.wait_for(lambda got: len(got) >= 1, 10)
        assert publisher.stop(5)
        assert collector.wait_for(lambda got: len(got) >= 2, 10)
    states = [e.body["state"] for e in collector.envelopes]
    assert states == ["online", "offline"]
    assert all(e.kind is MessageKind.STATUS for e in collector.envelopes)
    late = Collector(mosquitto.url, topics.status, client_id="late")
    with late:
        assert late.wait_for(lambda got: len(got) >= 1, 10)
    assert late.raw[0].retain
    assert late.envelopes[0].body["state"] == "offline"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_restores_subscription_after_broker_restart(mosquitto, protocol: str) -> None:
    topics = Topics("fleet", "car-1")
    with Collector(mosquitto.url, fleet_filter("fleet", MessageKind.EVENTS), protocol=protocol) as collector:
        with _publisher(mosquitto.url, protocol=protocol) as publisher:
            assert publisher.wait_connected(10)
            publisher.publish(topics.events, EnvelopeBuilder("car-1").build(MessageKind.EVENTS, {"n": 1}))
            assert collector.wait_for(lambda got: len(got) == 1, 10)
            mosquitto.restart()
            assert collector.client.wait_ready(15)
            assert publisher.wait_connected(15)
            publisher.publish(topics.events, EnvelopeBuilder("car-1").build(MessageKind.EVENTS, {"n": 2}))
            assert collector.wait_for(lambda got: any(e.body["n"] == 2 for e in got), 15)
        assert collector.client.stats()["connects"] == 2


def test_client_sends_events_before_frames(mosquitto, tmp_path: Path) -> None:
    topics = Topics("fleet", "car-1")
    builder = EnvelopeBuilder("car-1")
    publisher = _publisher(mosquitto.url, Spool(tmp_path / "spool.db"), inflight_window=1)
    for index in range(20):
        publisher.publish(topics.escalations, builder.build(MessageKind.ESCALATIONS, {"index": index}))
        publisher.publish(topics.results, builder.build(MessageKind.RESULTS, {"index": index}))
        if index % 5 == 0:
            publisher.publish(topics.events, builder.build(MessageKind.EVENTS, {"index": index}))
    with Collector(mosquitto.url, "fleet/car-1/+") as collector:
        with publisher:
            assert publisher.wait_drained(20)
            assert collector.wait_for(lambda got: sum(e.kind is not MessageKind.STATUS for e in got) >= 44, 20)
    kinds = [e.kind.value for e in collector.envelopes if e.kind is not MessageKind.STATUS]
    assert kinds == ["events"] * 4 + ["results"] * 20 + ["escalations"] * 20
    frames = [e.body["index"] for e in collector.envelopes if e.kind is MessageKind.ESCALATIONS]
    assert frames == list(range(20))


def test_client_counts_qos0_dropped_offline(tmp_path: Path) -> None:
    client = MqttClient(MqttConfig(port=free_port(), client_id="offline", qos={"status": 0}))
    assert client.publish("fleet/car-1/status", b"{}") is None
    assert client.publish("fleet/car-1/results", b"{}") is not None
    stats = client.stats()
    assert stats["qos0_dropped"] == 1
    assert stats["spool_depth"] == 1
    client.stop(1)


def test_client_reports_connect_failures() -> None:
    client = MqttClient(MqttConfig(port=free_port(), client_id="nobody-home", **FAST_RECONNECT))
    client.start()
    assert not client.wait_connected(1.5)
    stats = client.stats()
    assert stats["connect_failures"] >= 2
    assert "cannot reach broker" in stats["last_error"]
    assert "refused" in stats["last_error"]
    assert client.stop(5)


def test_client_handler_error_keeps_loop_running(mosquitto) -> None:
    received: list[InboundMessage] = []
    done = threading.Event()

    def handler(message: InboundMessage) -> None:
        if message.payload == b"bad":
            raise ValueError("handler bug")
        received.append(message)
        done.set()

    subscriber = MqttClient(MqttConfig.from_url(mosquitto.url, client_id="sub"))
    subscriber.subscribe("fleet/+/results", handler)
    with subscriber, _publisher(mosquitto.url) as publisher:
        assert subscriber.wait_ready(10)
        publisher.publish("fleet/car-1/results", b"bad")
        publisher.publish("fleet/car-1/results", b"good")
        assert done.wait(10)
        assert subscriber.stats()["handler_errors"] == 1
    assert [m.payload for m in received] == [b"good"]


def test_client_passes_mqtt5_properties(mosquitto) -> None:
    from edge_sdk.transport.payloads import escalation_properties

    got: list[InboundMessage] = []
    done = threading.Event()
    subscriber = MqttClient(MqttConfig.from_url(mosquitto.url, client_id="worker"))
    subscriber.subscribe("$share/maas/fleet/+/escalations", lambda m: (got.append(m), done.set()))
    with subscriber, _publisher(mosquitto.url) as publisher:
        assert subscriber.wait_ready(10)
        properties = escalation_properties("corr-1", "fleet/car-1/escalation_replies")
        publisher.publish("fleet/car-1/escalations", json.dumps({"x": 1}), properties=properties)
        assert done.wait(10)
    assert got[0].properties.ResponseTopic == "fleet/car-1/escalation_replies"
    assert got[0].properties.CorrelationData == b"corr-1"


def test_client_manual_ack_redelivers_unacked(mosquitto) -> None:
    topics = Topics("fleet", "car-1")
    first_seen = threading.Event()
    redelivered = threading.Event()
    seen: list[InboundMessage] = []

    def handler(message: InboundMessage) -> None:
        seen.append(message)
        (redelivered if first_seen.is_set() else first_seen).set()

    settings = {"client_id": "ingest", "clean_start": False, "manual_ack": True, **FAST_RECONNECT}
    subscriber = MqttClient(MqttConfig.from_url(mosquitto.url, **settings))
    subscriber.subscribe(topics.results, handler)
    with _publisher(mosquitto.url) as publisher:
        subscriber.start()
        assert subscriber.wait_ready(10)
        publisher.publish(topics.results, b'{"unacked": true}')
        assert first_seen.wait(10)
        subscriber.stop(5)
        second = MqttClient(MqttConfig.from_url(mosquitto.url, **settings))
        second.subscribe(topics.results, handler)
        with second:
            assert redelivered.wait(10)
            seen[-1].ack()
    assert [m.payload for m in seen] == [b'{"unacked": true}'] * 2


def test_client_worker_presence_uses_worker_kind(mosquitto) -> None:
    from edge_sdk.transport.topics import worker_status_topic

    topic = worker_status_topic("fleet", "maas-1")
    with Collector(mosquitto.url, topic, client_id="watcher") as collector:
        config = MqttConfig.from_url(mosquitto.url, client_id="maas-1", status_topic=topic, sender_id="maas-1")
        with MqttClient(config):
            assert collector.wait_for(lambda got: len(got) >= 1, 10)
    assert collector.envelopes[0].kind is MessageKind.WORKER_STATUS
    assert collector.envelopes[0].vehicle_id == "maas-1"
    assert collector.envelopes[0].body["state"] == "online"


def test_client_skips_unsendable_spooled_message(mosquitto, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.put("fleet/+/results", b"written by a buggy tool", kind="results")
    topics = Topics("fleet", "car-1")
    with Collector(mosquitto.url, topics.results) as collector:
        with _publisher(mosquitto.url, spool) as publisher:
            publisher.publish(topics.results, EnvelopeBuilder("car-1").build(MessageKind.RESULTS, {"index": 0}))
            assert publisher.wait_drained(10)
            assert collector.wait_for(lambda got: len(got) == 1, 10)
            stats = publisher.stats()
    assert stats["rejected"] == {"results": 1}
    assert "fleet/+/results" in stats["last_error"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_removes_message_broker_disconnects_on(mosquitto, tmp_path: Path, protocol: str) -> None:
    """A spooled row that makes Mosquitto close the connection (a NUL in its topic) is removed after a few tries."""
    spool = Spool(tmp_path / "spool.db")
    spool.put("fleet/car-1\x00/results", b"written by a buggy tool", kind="results")
    topics = Topics("fleet", "car-1")
    builder = EnvelopeBuilder("car-1")
    with Collector(mosquitto.url, topics.results) as collector:
        with _publisher(mosquitto.url, spool, protocol=protocol) as publisher:
            for index in range(5):
                publisher.publish(topics.results, builder.build(MessageKind.RESULTS, {"index": index}))
            assert collector.wait_for(lambda got: len({e.body["index"] for e in got}) == 5, 60), publisher.stats()
            assert publisher.wait_drained(10)
            stats = publisher.stats()

    assert stats["rejected"] == {"results": 1}
    assert "closed the connection" in stats["last_error"]
    assert stats["disconnects"] >= 3
    assert spool.depth == 0
    assert sorted({e.body["index"] for e in collector.envelopes}) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("reason", "suspected"), [(0x81, True), (0x80, True), (0x8E, False), (0x8B, False), (0x8D, False)])
def test_client_strike_rule_ignores_broker_side_reasons(tmp_path: Path, reason: int, suspected: bool) -> None:
    """Malformed packet or unspecified error counts against the message in flight; a session take-over does not."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    from edge_sdk.transport.client import POISON_STRIKES, _InFlight

    spool = Spool(tmp_path / "spool.db")
    spool.put("fleet/car-1/results", b"{}", kind="results")
    client = MqttClient(MqttConfig(client_id="rule"), spool)
    client._inflight[1] = _InFlight(spool.peek(1)[0], time.monotonic())
    for _ in range(POISON_STRIKES):
        client._connected_mono = time.monotonic()
        client._count_strike(ReasonCode(PacketTypes.DISCONNECT, identifier=reason))

    assert (client._poison is not None) is suspected
    spool.close()


@pytest.mark.parametrize("topic", ["", "fleet/+/results", "fleet/#", "fleet/car\x00/results"])
def test_client_publish_rejects_invalid_topic(topic: str) -> None:
    client = MqttClient(MqttConfig(client_id="offline"))
    with pytest.raises(TopicError):
        client.publish(topic, b"{}")
    assert client.spool.depth == 0
    client.stop(1)


class SmallReceiveMaximumBroker(MosquittoBroker):
    """Mosquitto announcing Receive Maximum 5 in its MQTT 5 CONNACK."""

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text().replace("max_inflight_messages 0", "max_inflight_messages 5")
        self.config_path.write_text(text)


def test_client_honours_broker_receive_maximum(tmp_path: Path) -> None:
    broker = SmallReceiveMaximumBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        peak = 0
        publisher = _publisher(broker.url, Spool(tmp_path / "spool.db"))
        with publisher:
            assert publisher.wait_connected(10)
            for index in range(100):
                publisher.publish("fleet/car-1/results", b'{"index": %d}' % index)
            deadline = time.monotonic() + 20
            while publisher.spool.depth and time.monotonic() < deadline:
                peak = max(peak, publisher.stats()["inflight"])
                time.sleep(0.002)
            assert publisher.wait_drained(5)
        assert 1 <= peak <= 4
    finally:
        broker.stop()


class SmallMessageLimitBroker(MosquittoBroker):
    """Mosquitto that drops the connection of an MQTT 5 client sending a payload above 1000 bytes."""

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_path.open("a") as config:
            config.write("message_size_limit 1000\n")


def test_client_rejects_payload_above_limit() -> None:
    client = MqttClient(MqttConfig(client_id="offline", max_payload_bytes=1000))
    with pytest.raises(PayloadError) as info:
        client.publish("fleet/car-1/escalations", b"x" * 1001)
    assert info.value.field == "payload"
    assert "max_payload_bytes = 1000" in str(info.value)
    assert client.spool.depth == 0
    client.stop(1)


def test_client_drops_oversized_spooled_row(tmp_path: Path) -> None:
    broker = SmallMessageLimitBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        spool = Spool(tmp_path / "spool.db")
        spool.put("fleet/car-1/escalations", b"x" * 2000, kind="escalations", priority=50)
        with Collector(broker.url, "fleet/car-1/results") as collector:
            with _publisher(broker.url, spool, max_payload_bytes=1000) as publisher:
                publisher.publish("fleet/car-1/results", EnvelopeBuilder("car-1").build(MessageKind.RESULTS, {"index": 0}))
                assert publisher.wait_drained(10)
                assert collector.wait_for(lambda got: len(got) == 1, 10)
                stats = publisher.stats()
        assert stats["rejected"] == {"escalations": 1}
        assert stats["connects"] == 1
    finally:
        broker.stop()


def test_client_stop_from_handler_is_rejected(mosquitto) -> None:
    errors: list[Exception] = []
    done = threading.Event()
    subscriber = MqttClient(MqttConfig.from_url(mosquitto.url, client_id="sub"))

    def handler(message: InboundMessage) -> None:
        try:
            subscriber.stop(1)
        except TransportError as exc:
            errors.append(exc)
        done.set()

    subscriber.subscribe("fleet/+/results", handler)
    with subscriber, _publisher(mosquitto.url) as publisher:
        assert subscriber.wait_ready(10)
        publisher.publish("fleet/car-1/results", b"{}")
        assert done.wait(10)
        assert subscriber.connected.is_set()
    assert len(errors) == 1
    assert "another thread" in str(errors[0])
