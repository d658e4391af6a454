"""A test vehicle for the cloud tests: sends escalation requests and telemetry, collects replies over a real broker."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from typing import Any

from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import (
    EnvelopeBuilder,
    EscalationRequest,
    ModelRef,
    escalation_properties,
    parse_envelope,
    parse_escalation_reply,
)
from edge_sdk.transport.topics import MessageKind, Topics, fleet_filter

PREFIX = "fleet"
EDGE_RESULT = {
    "task": "classification",
    "model": {"name": "edge-small", "version": "1"},
    "timing_ms": {"preprocess": 0.5, "invoke": 3.0, "postprocess": 0.1},
    "classifications": [{"class_id": 3, "label": "unsure", "score": 0.31}],
}


class FleetVehicle:
    """One vehicle's MQTT client: publishes requests, records every reply by correlation id."""

    def __init__(self, broker: Any, vehicle_id: str = "car-1", protocol: str = "5") -> None:
        self.vehicle_id = vehicle_id
        self.topics = Topics(PREFIX, vehicle_id)
        self.protocol = protocol
        self.builder = EnvelopeBuilder(vehicle_id)
        self.replies: dict[str, list[Any]] = defaultdict(list)
        self.reply_messages: list[InboundMessage] = []
        self.worker_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._condition = threading.Condition()
        config = MqttConfig(host=broker.host, port=broker.port, protocol=protocol, client_id=f"vehicle-{vehicle_id}-{uuid.uuid4().hex[:6]}")
        self.client = MqttClient(config)
        self.client.subscribe(self.topics.escalation_replies, self._on_reply, qos=1)
        self.client.subscribe(fleet_filter(PREFIX, MessageKind.WORKER_STATUS), self._on_worker_status, qos=1)
        self.client.start()
        assert self.client.wait_connected(10.0), f"test vehicle could not connect to {broker.host}:{broker.port}"

    def _on_reply(self, message: InboundMessage) -> None:
        envelope = parse_envelope(message.payload, expected_kind=MessageKind.ESCALATION_REPLIES)
        reply = parse_escalation_reply(envelope.body)
        with self._condition:
            self.replies[reply.correlation_id].append(reply)
            self.reply_messages.append(message)
            self._condition.notify_all()

    def _on_worker_status(self, message: InboundMessage) -> None:
        envelope = parse_envelope(message.payload, expected_kind=MessageKind.WORKER_STATUS)
        with self._condition:
            self.worker_status[envelope.vehicle_id].append(envelope.body)
            self._condition.notify_all()

    def wait_for_status(self, worker_id: str, predicate: Any, timeout: float = 15.0) -> dict[str, Any] | None:
        """Block until a status of `worker_id` satisfies `predicate`; return it, or None after `timeout`.

        A worker's first "online" status reaches the broker after its
        subscription, so seeing it means the worker receives requests.
        """
        found: list[dict[str, Any]] = []

        def matched() -> bool:
            found.extend(status for status in self.worker_status.get(worker_id, []) if predicate(status))
            return bool(found)

        with self._condition:
            self._condition.wait_for(matched, timeout)
        return found[-1] if found else None

    def request_body(self, jpeg: bytes, correlation_id: str, frame_id: int = 0) -> dict[str, Any]:
        request = EscalationRequest(
            frame_id=str(frame_id),
            source_id="front",
            capture_time=1_764_870_000.0 + frame_id,
            edge_result=EDGE_RESULT,
            model=ModelRef("edge-small", "1"),
            correlation_id=correlation_id,
            reply_to=self.topics.escalation_replies,
            image_jpeg=jpeg,
        )
        return request.to_body()

    def send_request(self, jpeg: bytes, frame_id: int = 0) -> str:
        """Publish one escalation request; return its correlation id."""
        correlation_id = f"{self.vehicle_id}-{frame_id}-{uuid.uuid4().hex[:8]}"
        envelope = self.builder.build(MessageKind.ESCALATIONS, self.request_body(jpeg, correlation_id, frame_id))
        properties = escalation_properties(correlation_id, self.topics.escalation_replies) if self.protocol == "5" else None
        self.client.publish(self.topics.escalations, envelope, qos=1, properties=properties)
        return correlation_id

    def send_raw(self, payload: bytes, properties: Any = None) -> None:
        self.client.publish(self.topics.escalations, payload, qos=1, properties=properties)

    def reply_count(self) -> int:
        with self._condition:
            return sum(len(replies) for replies in self.replies.values())

    def wait_for_replies(self, correlation_ids: list[str], timeout: float) -> bool:
        """Block until every correlation id has at least one reply or `timeout` passes."""
        with self._condition:
            return self._condition.wait_for(lambda: all(self.replies.get(cid) for cid in correlation_ids), timeout)

    def close(self) -> None:
        self.client.stop(timeout=5.0)
