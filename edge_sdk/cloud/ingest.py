"""The telemetry ingest subscriber: every fleet message into storage once, every bad payload into dead letters.

Delivery is at least once (QoS 1). The subscriber keeps a persistent session
under a fixed client id: clean start off with a session expiry on MQTT 5,
clean_session off on 3.1.1. The broker queues what arrives while it is down
and sends it on reconnect. A message is stored before its handler
returns, and the client acknowledges it only after that, so a crash between
the two redelivers it; the storage drops the copy by (vehicle id, message id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from edge_sdk.cloud.errors import StorageError
from edge_sdk.cloud.records import (
    KIND_REPLY,
    KIND_ESCALATION,
    KIND_EVENT,
    KIND_RESULT,
    KIND_STATUS,
    KIND_WORKER_STATUS,
    DeadLetter,
    TelemetryRecord,
)
from edge_sdk.cloud.storage import Storage
from edge_sdk.errors import ConfigError
from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.errors import PayloadError, TopicError
from edge_sdk.transport.payloads import Envelope, parse_envelope, parse_escalation_reply, parse_escalation_request
from edge_sdk.transport.topics import MessageKind, fleet_filter, parse_topic, shared_filter

logger = logging.getLogger(__name__)

# Storage kind of each transport message kind.
STORAGE_KINDS: dict[MessageKind, str] = {
    MessageKind.RESULTS: KIND_RESULT,
    MessageKind.EVENTS: KIND_EVENT,
    MessageKind.STATUS: KIND_STATUS,
    MessageKind.ESCALATIONS: KIND_ESCALATION,
    MessageKind.ESCALATION_REPLIES: KIND_REPLY,
    MessageKind.WORKER_STATUS: KIND_WORKER_STATUS,
}
DEFAULT_KINDS: tuple[MessageKind, ...] = tuple(STORAGE_KINDS)
# Kinds whose envelope is sent by someone other than the vehicle named in the topic.
_SENT_BY_WORKER = (MessageKind.ESCALATION_REPLIES,)


class IngestOutcome(str, Enum):
    """Outcome of one received payload."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Subscription settings of the ingest subscriber.

    `group` set: subscribe through `$share/{group}/...` so several ingest
    processes split the fleet's messages (each with its own client id, all
    writing to one server database).
    """

    prefix: str = "fleet"
    client_id: str = "edge-sdk-ingest"
    kinds: tuple[MessageKind, ...] = DEFAULT_KINDS
    group: str | None = None
    qos: int = 1
    session_expiry_s: int = 7 * 24 * 3600
    max_payload_bytes: int = 8 * 1024 * 1024


class IngestSubscriber:
    """Subscribe to the fleet's topics and store each message through a `Storage`.

    `handle(topic, payload)` does the work and can be fed directly (tests,
    replays); `start()` connects an `MqttClient` built from `mqtt_config`
    with the client id, persistent session and manual acknowledgement set
    from `config`. The storage is not closed by `stop()`.
    """

    def __init__(
        self,
        storage: Storage,
        config: IngestConfig | None = None,
        mqtt_config: MqttConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.config = config or IngestConfig()
        self.mqtt_config = mqtt_config
        self._clock = clock
        self._client: MqttClient | None = None
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.stored_event = threading.Condition(self._lock)

    # --- the work ---------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> IngestOutcome:
        """Store one received payload, or keep it as a dead letter with the reason; never raises for bad input.

        Raises StorageError when the database itself fails, so the caller does
        not acknowledge a message that was not stored.
        """
        received_at = self._clock()
        try:
            record = self._to_record(topic, payload, received_at)
        except (PayloadError, TopicError) as exc:
            return self._dead_letter(topic, payload, str(exc), received_at)

        stored = self.storage.store(record)
        outcome = IngestOutcome.STORED if stored else IngestOutcome.DUPLICATE
        if not stored:
            logger.debug("dropped duplicate message %s from %s", record.message_id, record.vehicle_id)
        self._count(outcome, record.kind)
        return outcome

    def _to_record(self, topic: str, payload: bytes, received_at: float) -> TelemetryRecord:
        _, vehicle_id, topic_kind = parse_topic(topic)
        envelope = parse_envelope(payload, expected_kind=topic_kind, max_bytes=self.config.max_payload_bytes)
        if topic_kind not in _SENT_BY_WORKER and envelope.vehicle_id != vehicle_id:
            raise PayloadError(
                "vehicle_id",
                f"is {envelope.vehicle_id!r} but the message came on {topic!r} of vehicle {vehicle_id!r}: a sender publishes only on its own topics",
            )
        _validate_body(envelope)
        return TelemetryRecord(
            vehicle_id=vehicle_id,
            message_id=envelope.message_id,
            kind=STORAGE_KINDS[topic_kind],
            topic=topic,
            t_wall=envelope.t_wall,
            received_at=received_at,
            body=envelope.body,
            seq=envelope.seq,
        )

    def _dead_letter(self, topic: str, payload: bytes, reason: str, received_at: float) -> IngestOutcome:
        vehicle_id: str | None
        try:
            vehicle_id = parse_topic(topic)[1]
        except TopicError:
            vehicle_id = None
        self.storage.store_dead_letter(DeadLetter(topic=topic, payload=bytes(payload), reason=reason, received_at=received_at, vehicle_id=vehicle_id))
        logger.warning("dead letter from %s (%d bytes): %s", topic, len(payload), reason)
        self._count(IngestOutcome.DEAD_LETTER, None)
        return IngestOutcome.DEAD_LETTER

    def _count(self, outcome: IngestOutcome, kind: str | None) -> None:
        with self.stored_event:
            self.counts[outcome.value] += 1
            if kind is not None and outcome is IngestOutcome.STORED:
                self.counts[f"stored.{kind}"] += 1
            self.stored_event.notify_all()

    def wait_for(self, predicate: Callable[[Counter[str]], bool], timeout: float) -> bool:
        """Block until `predicate(counts)` is true or `timeout` seconds pass; return whether it became true."""
        with self.stored_event:
            return self.stored_event.wait_for(lambda: predicate(self.counts), timeout)

    # --- MQTT wiring ------------------------------------------------------------------------------

    def topic_filters(self) -> list[str]:
        """Return the subscription filters, shared when a group is configured."""
        filters = [fleet_filter(self.config.prefix, kind) for kind in self.config.kinds]
        if self.config.group:
            filters = [shared_filter(self.config.group, topic_filter) for topic_filter in filters]
        return filters

    def start(self, connect_timeout: float | None = None) -> None:
        """Connect and subscribe; with `connect_timeout`, wait that long for the broker to acknowledge the subscriptions (it keeps retrying after)."""
        if self._client is not None:
            return
        if self.mqtt_config is None:
            raise ConfigError("IngestSubscriber.start() needs an mqtt_config with the broker address: pass MqttConfig(host=..., port=...)")
        client_config = self.mqtt_config.replace(
            client_id=self.config.client_id,
            clean_start=False,
            session_expiry=self.config.session_expiry_s,
            manual_ack=True,
        )
        self._client = MqttClient(client_config)
        for topic_filter in self.topic_filters():
            self._client.subscribe(topic_filter, self._on_message, qos=self.config.qos)
        self._client.start()
        if connect_timeout is not None and not self._client.wait_ready(connect_timeout):
            logger.warning("ingest %s is not subscribed on %s after %.1f s; it keeps retrying", self.config.client_id, client_config.address, connect_timeout)
        logger.info("ingest %s subscribed to %s", self.config.client_id, ", ".join(self.topic_filters()))

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, keeping the broker session so messages sent meanwhile wait for the next start. Safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.stop(timeout=timeout)
            logger.info("ingest %s stopped: %s", self.config.client_id, dict(self.counts))

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the broker has acknowledged every subscription; a first-ever subscriber misses what was published before."""
        return self._client is not None and self._client.wait_ready(timeout)

    def __enter__(self) -> IngestSubscriber:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_message(self, message: InboundMessage) -> None:
        try:
            self.handle(message.topic, message.payload)
        except StorageError as exc:
            # Not acknowledged, so the broker sends it again after the next reconnect.
            with self.stored_event:
                self.counts["storage_errors"] += 1
            logger.error("ingest %s could not store a message from %s, left unacknowledged: %s", self.config.client_id, message.topic, exc)
            return
        message.ack()


def _validate_body(envelope: Envelope) -> None:
    if envelope.kind is MessageKind.ESCALATIONS:
        parse_escalation_request(envelope.body)
    elif envelope.kind is MessageKind.ESCALATION_REPLIES:
        parse_escalation_reply(envelope.body)
