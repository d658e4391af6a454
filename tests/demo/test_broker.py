"""What the embedded amqtt broker supports, checked with real paho-mqtt clients on loopback."""

from __future__ import annotations

import queue
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_sdk.demo.broker import DEMO_USERNAME, EmbeddedBroker

pytest.importorskip("amqtt")

WAIT_S = 10.0


class Probe:
    """A paho client that records CONNACK and every message it receives."""

    def __init__(self, broker: EmbeddedBroker, client_id: str, *, protocol: int = mqtt.MQTTv311, clean: bool = True,
                 username: str | None = DEMO_USERNAME, will: tuple[str, str] | None = None) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[object] = queue.Queue()
        self.session_present = False
        kwargs = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs)
        if username:
            self.client.username_pw_set(username, "demo")
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda client, userdata, flags, reason_code, properties: self.connack.put(None)
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.session_present = bool(flags.session_present)
        self.connack.put(reason_code)

    def connected(self) -> bool:
        """Return True on a successful CONNACK, and False on a rejection or a connection closed before CONNACK."""
        reason = self.connack.get(timeout=WAIT_S)
        return reason is not None and not reason.is_failure

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic_filter, qos)
        assert done.wait(WAIT_S), f"no SUBACK for {topic_filter}"

    def next_on(self, topic: str, timeout: float = WAIT_S) -> mqtt.MQTTMessage | None:
        """Return the next message on `topic`, skipping others, or None after `timeout`."""
        try:
            while True:
                message = self.messages.get(timeout=timeout)
                if message.topic == topic:
                    return message
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker():
    with EmbeddedBroker() as running:
        yield running


def test_broker_rejects_mqtt5(broker):
    probe = Probe(broker, "v5", protocol=mqtt.MQTTv5)
    assert not probe.connected()
    probe.client.loop_stop()


def test_broker_rejects_anonymous_client(broker):
    probe = Probe(broker, "anonymous", username=None)
    assert not probe.connected()
    probe.client.loop_stop()


@pytest.mark.parametrize("qos", [1, 2])
def test_broker_delivers_qos(broker, qos):
    subscriber, publisher = Probe(broker, "sub"), Probe(broker, "pub")
    assert subscriber.connected()
    assert publisher.connected()
    subscriber.subscribe("demo/qos", qos)
    publisher.client.publish("demo/qos", b"payload", qos=qos).wait_for_publish(WAIT_S)
    message = subscriber.next_on("demo/qos")
    assert message is not None
    assert message.payload == b"payload"
    subscriber.close()
    publisher.close()


def test_broker_keeps_retained_message(broker):
    publisher = Probe(broker, "pub")
    assert publisher.connected()
    publisher.client.publish("demo/v1/status", b"online", qos=1, retain=True).wait_for_publish(WAIT_S)
    late = Probe(broker, "late")
    assert late.connected()
    late.subscribe("demo/+/status")
    message = late.next_on("demo/v1/status")
    assert message is not None
    assert message.retain
    publisher.close()
    late.close()


def test_broker_sends_last_will(broker):
    watcher = Probe(broker, "watcher")
    assert watcher.connected()
    watcher.subscribe("demo/v2/status")
    dying = Probe(broker, "dying", will=("demo/v2/status", "offline"))
    assert dying.connected()
    dying.client.loop_stop()
    dying.client.socket().close()  # connection lost without DISCONNECT
    message = watcher.next_on("demo/v2/status", timeout=20.0)
    assert message is not None
    assert message.payload == b"offline"
    watcher.close()


def test_broker_queues_for_persistent_session(broker):
    first = Probe(broker, "ingest", clean=False)
    assert first.connected()
    first.subscribe("demo/+/results")
    first.close()
    publisher = Probe(broker, "pub")
    assert publisher.connected()
    publisher.client.publish("demo/v3/results", b"while-away", qos=1).wait_for_publish(WAIT_S)
    second = Probe(broker, "ingest", clean=False)
    assert second.connected()
    assert second.session_present
    message = second.next_on("demo/v3/results")
    assert message is not None
    assert message.payload == b"while-away"
    second.close()
    publisher.close()


def test_broker_lacks_shared_subscriptions(broker):
    worker, publisher = Probe(broker, "worker"), Probe(broker, "pub")
    assert worker.connected()
    assert publisher.connected()
    worker.subscribe("$share/maas/demo/+/escalations")
    publisher.client.publish("demo/v4/escalations", b"request", qos=1).wait_for_publish(WAIT_S)
    assert worker.next_on("demo/v4/escalations", timeout=2.0) is None
    worker.close()
    publisher.close()


def test_broker_subscribe_during_connect(broker, caplog):
    """A client connecting while another subscribes to new filters stays connected.

    On CONNECT amqtt walks every subscribed filter and sends the connecting
    client each matching retained message. Every send yields to the event
    loop, so the other client's SUBSCRIBE can add a filter to the table being
    walked. Many retained topics make that walk long enough to be hit.
    """
    topics = [f"demo/retained/{index}" for index in range(150)]
    publisher = Probe(broker, "pub")
    assert publisher.connected()
    for topic in topics:
        publisher.client.publish(topic, b"x" * 64, qos=1, retain=True)
    publisher.client.publish("demo/retained/done", b"", qos=1).wait_for_publish(WAIT_S)

    subscriber = Probe(broker, "sub")
    assert subscriber.connected()
    for topic in topics:
        subscriber.subscribe(topic)
    stop = threading.Event()

    def keep_subscribing() -> None:
        index = 0
        while not stop.is_set():
            subscriber.client.subscribe(f"demo/new/{index}", 1)
            index += 1
            stop.wait(0.001)

    thread = threading.Thread(target=keep_subscribing, daemon=True)
    thread.start()
    try:
        for attempt in range(20):
            late = Probe(broker, f"late-{attempt}")
            assert late.connected()
            late.subscribe("demo/late")
            late.close()
    finally:
        stop.set()
        thread.join(WAIT_S)
        subscriber.close()
        publisher.close()
    assert "dictionary changed size" not in caplog.text
