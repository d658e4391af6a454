"""Daemon-side publishing over `MqttClient`: envelopes, topics, QoS, and capture-to-acknowledgement timing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from edge_sdk.latency import LatencyWindow
from edge_sdk.transport.client import Delivery, MqttClient
from edge_sdk.transport.payloads import EnvelopeBuilder
from edge_sdk.transport.topics import MessageKind, Topics

logger = logging.getLogger(__name__)

# Spool ids waiting for their acknowledgement at most; older entries are forgotten (their latency is not measured).
_MAX_TRACKED = 100_000


class MqttOutbox:
    """Wraps bodies in envelopes, publishes them on the vehicle's topics and times results from capture to PUBACK.

    The latency of a result counts from the frame's monotonic capture time to
    the moment the client's sender thread handles the broker's acknowledgement.
    Results replayed from a spool left by an earlier process are not timed.
    """

    def __init__(self, client: MqttClient, topics: Topics, builder: EnvelopeBuilder, capture_to_ack_ms: LatencyWindow) -> None:
        self.client = client
        self.topics = topics
        self.builder = builder
        self.capture_to_ack_ms = capture_to_ack_ms
        self._capture_by_spool_id: dict[int, float] = {}
        self._lock = threading.Lock()

    def send(self, kind: MessageKind, body: Mapping[str, Any], *, capture_mono: float | None = None, retain: bool = False) -> int | None:
        """Publish one body; return its spool id, or None for QoS 0 or a message the spool limit dropped."""
        envelope = self.builder.build(kind, body)
        if capture_mono is None:
            return self.client.publish(self.topics.for_kind(kind), envelope, retain=retain)
        # Held across publish() so that an acknowledgement arriving before the
        # spool id is recorded waits in on_ack() instead of going unmeasured.
        with self._lock:
            spool_id = self.client.publish(self.topics.for_kind(kind), envelope, retain=retain)
            if spool_id is not None:
                if len(self._capture_by_spool_id) >= _MAX_TRACKED:
                    self._capture_by_spool_id.pop(next(iter(self._capture_by_spool_id)))
                self._capture_by_spool_id[spool_id] = capture_mono
        return spool_id

    def on_ack(self, delivery: Delivery) -> None:
        """`MqttClient.on_ack` hook."""
        with self._lock:
            capture_mono = self._capture_by_spool_id.pop(delivery.spool_id, None)
        if capture_mono is not None:
            self.capture_to_ack_ms.add_seconds(time.monotonic() - capture_mono)
