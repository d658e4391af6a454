"""IngestSubscriber against a real Mosquitto broker: exactly-once storage, restarts, dead letters."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from edge_sdk.cloud.ingest import IngestConfig, IngestOutcome, IngestSubscriber
from edge_sdk.cloud.records import KIND_EVENT, KIND_RESULT, KIND_STATUS, MessageQuery
from edge_sdk.cloud.storage import SqliteStorage
from edge_sdk.transport.client import MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import Envelope, EnvelopeBuilder
from edge_sdk.transport.topics import MessageKind, Topics
from tests.cloud.fleet import PREFIX


def result_body(seq: int) -> dict:
    return {
        "task": "classification",
        "model": {"name": "edge-small", "version": "1"},
        "timing_ms": {"preprocess": 0.4, "invoke": 3.0 + seq % 5, "postprocess": 0.1},
        "classifications": [{"class_id": seq % 3, "label": ("stop", "yield", "priority road")[seq % 3], "score": 0.9}],
        "source": "edge",
    }


class Publisher:
    """A vehicle publishing telemetry through the transport client, keeping every envelope it sent."""

    def __init__(self, broker, vehicle_id: str, protocol: str = "5") -> None:
        self.topics = Topics(PREFIX, vehicle_id)
        self.builder = EnvelopeBuilder(vehicle_id)
        self.sent: list[tuple[str, Envelope]] = []
        config = MqttConfig(host=broker.host, port=broker.port, protocol=protocol, client_id=f"pub-{vehicle_id}-{uuid.uuid4().hex[:6]}")
        self.client = MqttClient(config)
        self.client.start()
        assert self.client.wait_connected(10.0)

    def publish(self, kind: MessageKind, body: dict) -> Envelope:
        envelope = self.builder.build(kind, body)
        topic = self.topics.for_kind(kind)
        self.client.publish(topic, envelope, qos=1)
        self.sent.append((topic, envelope))
        return envelope

    def publish_run(self, count: int) -> None:
        """Publish a mix of results, events and status messages, `count` in all."""
        for i in range(count):
            if i % 10 == 9:
                self.publish(MessageKind.STATUS, {"state": "online", "fps": 24.5})
            elif i % 5 == 4:
                self.publish(MessageKind.EVENTS, {"type": "object_appeared", "label": "stop", "severity": "info"})
            else:
                self.publish(MessageKind.RESULTS, result_body(i))

    def resend_all(self) -> None:
        for topic, envelope in self.sent:
            self.client.publish(topic, envelope, qos=1)

    def flush(self) -> None:
        assert self.client.wait_drained(20.0), "the publisher's spool did not drain"

    def close(self) -> None:
        self.client.stop(timeout=5.0)


def make_subscriber(storage: SqliteStorage, mosquitto, protocol: str = "5", client_id: str = "ingest-test") -> IngestSubscriber:
    mqtt_config = MqttConfig(host=mosquitto.host, port=mosquitto.port, protocol=protocol)
    return IngestSubscriber(storage, IngestConfig(prefix=PREFIX, client_id=client_id), mqtt_config)


def wait_until_subscribed(subscriber: IngestSubscriber, mosquitto) -> None:
    """Publish probe worker-status messages until one is stored.

    A first-ever subscriber has no session on the broker yet, so messages
    published before its SUBSCRIBE is processed are not queued for it. The
    probes are of a kind the tests' runs do not use, so the run counters
    below ignore them.
    """
    probe = Publisher(mosquitto, "probe")
    try:
        for _ in range(50):
            probe.publish(MessageKind.WORKER_STATUS, {"state": "online"})
            if subscriber.wait_for(lambda counts: counts["stored.worker_status"] >= 1, timeout=0.2):
                return
        raise AssertionError("the subscriber never stored a probe message")
    finally:
        probe.close()


RUN_KINDS = (KIND_RESULT, KIND_EVENT, KIND_STATUS)


def stored_at_least(count: int):
    """Predicate: at least `count` results, events and status messages stored (probes excluded)."""
    return lambda counts: sum(counts[f"stored.{kind}"] for kind in RUN_KINDS) >= count


def handled_at_least(count: int):
    """Predicate: at least `count` payloads stored, dropped as duplicates or dead-lettered, probes excluded."""
    return lambda counts: sum(counts[f"stored.{kind}"] for kind in RUN_KINDS) + counts[IngestOutcome.DUPLICATE.value] + counts[IngestOutcome.DEAD_LETTER.value] >= count


@pytest.fixture
def storage(tmp_path: Path):
    with SqliteStorage(tmp_path / "telemetry.db") as store:
        yield store


def test_ingest_stores_each_message_once_when_resent(mosquitto, storage) -> None:
    subscriber = make_subscriber(storage, mosquitto)
    subscriber.start(connect_timeout=10.0)
    wait_until_subscribed(subscriber, mosquitto)
    publisher = Publisher(mosquitto, "car-7")
    try:
        publisher.publish_run(40)
        publisher.flush()
        assert subscriber.wait_for(stored_at_least(40), timeout=20.0)
        publisher.resend_all()
        publisher.flush()
        assert subscriber.wait_for(handled_at_least(80), timeout=20.0)
    finally:
        publisher.close()
        subscriber.stop()

    assert storage.count(vehicle_id="car-7") == 40
    assert subscriber.counts[IngestOutcome.DUPLICATE.value] == 40
    stored_ids = [message.message_id for message in storage.query(MessageQuery(vehicle_id="car-7"))]
    assert sorted(stored_ids) == sorted(envelope.message_id for _, envelope in publisher.sent)
    assert storage.count(kind=KIND_RESULT, vehicle_id="car-7") == 32
    assert storage.count(kind=KIND_EVENT, vehicle_id="car-7") == 4
    assert storage.count(kind=KIND_STATUS, vehicle_id="car-7") == 4


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_ingest_restart_loses_nothing(mosquitto, storage, protocol: str) -> None:
    publisher = Publisher(mosquitto, "car-9", protocol=protocol)
    subscriber = make_subscriber(storage, mosquitto, protocol=protocol, client_id=f"ingest-{protocol}")
    subscriber.start(connect_timeout=10.0)
    wait_until_subscribed(subscriber, mosquitto)
    try:
        publisher.publish_run(30)
        assert subscriber.wait_for(stored_at_least(30), timeout=20.0)
        subscriber.stop()

        # Published while the subscriber is down: the broker keeps them in its session.
        publisher.publish_run(30)
        publisher.flush()

        subscriber = make_subscriber(storage, mosquitto, protocol=protocol, client_id=f"ingest-{protocol}")
        subscriber.start(connect_timeout=10.0)
        assert subscriber.wait_for(stored_at_least(30), timeout=20.0), f"stored {storage.count()} of 60"
    finally:
        publisher.close()
        subscriber.stop()

    assert storage.count(vehicle_id="car-9") == 60
    seqs = sorted(message.seq for message in storage.query(MessageQuery(vehicle_id="car-9", kind=KIND_RESULT)))
    assert len(seqs) == len(set(seqs))


def raw_envelope(**changes) -> bytes:
    data = {
        "schema": "edge-sdk/1",
        "kind": "results",
        "vehicle_id": "car-3",
        "message_id": f"raw-{uuid.uuid4().hex}",
        "seq": 0,
        "t_wall": 1_764_870_000.0,
        "body": result_body(0),
    }
    data.update(changes)
    return json.dumps({key: value for key, value in data.items() if value is not None}).encode()


def test_ingest_malformed_payloads_become_dead_letters(mosquitto, storage) -> None:
    topics = Topics(PREFIX, "car-3")
    cases = [
        (topics.results, b"\x00\xffnot json at all", "is not UTF-8"),
        (topics.results, b"[1, 2, 3]", "must be a JSON object"),
        (topics.results, raw_envelope(schema="edge-sdk/9"), "schema"),
        (topics.results, raw_envelope(message_id=None), "message_id"),
        (topics.results, raw_envelope(vehicle_id="car-4"), "vehicle_id"),
        (topics.events, raw_envelope(), "'kind'"),
        (topics.escalations, raw_envelope(kind="escalations", body={"frame_id": 1}), "body.image_jpeg"),
    ]
    subscriber = make_subscriber(storage, mosquitto)
    subscriber.start(connect_timeout=10.0)
    wait_until_subscribed(subscriber, mosquitto)
    client = MqttClient(MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="raw-sender"))
    client.start()
    try:
        assert client.wait_connected(10.0)
        for topic, payload, _ in cases:
            client.publish(topic, payload, qos=1)
        client.publish(topics.results, raw_envelope(), qos=1)
        assert subscriber.wait_for(handled_at_least(len(cases) + 1), timeout=20.0)
    finally:
        client.stop(timeout=5.0)
        subscriber.stop()

    letters = storage.dead_letters()
    assert len(letters) == len(cases)
    by_payload = {letter.payload: letter for letter in letters}
    for topic, payload, reason in cases:
        letter = by_payload[payload]
        assert reason in letter.reason, f"{payload[:40]!r}: {letter.reason}"
        assert letter.topic == topic
        assert letter.vehicle_id == "car-3"
    assert storage.count(vehicle_id="car-3") == 1


def test_ingest_survives_broker_restart(mosquitto, storage) -> None:
    subscriber = make_subscriber(storage, mosquitto, client_id="ingest-outage")
    subscriber.start(connect_timeout=10.0)
    wait_until_subscribed(subscriber, mosquitto)
    publisher = Publisher(mosquitto, "car-out")
    try:
        publisher.publish_run(20)
        assert subscriber.wait_for(stored_at_least(20), timeout=20.0)

        mosquitto.restart()
        # Published before the clients have reconnected to the restarted broker: the vehicle's spool keeps them.
        publisher.publish_run(20)
        assert publisher.client.wait_connected(20.0)
        publisher.flush()
        assert subscriber.wait_for(stored_at_least(40), timeout=30.0), f"stored {storage.count(vehicle_id='car-out')} of 40"
    finally:
        publisher.close()
        subscriber.stop()

    assert storage.count(vehicle_id="car-out") == 40
    stored_ids = sorted(message.message_id for message in storage.query(MessageQuery(vehicle_id="car-out")))
    assert stored_ids == sorted(envelope.message_id for _, envelope in publisher.sent)
