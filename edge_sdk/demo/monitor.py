"""The demo's observer: a plain MQTT subscriber that turns results and status records into live figures.

It reads the same messages any fleet subscriber would (the vehicle's
`results` and retained `status` topics), so the live view works the same with
the embedded broker and with an external one.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge_sdk.demo.view import DemoSnapshot
from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.errors import PayloadError
from edge_sdk.transport.payloads import parse_envelope
from edge_sdk.transport.topics import Topics

logger = logging.getLogger(__name__)

FPS_WINDOW_S = 3.0


def _top_label(result: Mapping[str, Any]) -> str:
    entries = list(result.get("classifications") or []) + list(result.get("detections") or [])
    scored = [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("score"), (int, float))]
    if not scored:
        return "none"
    best = max(scored, key=lambda e: e["score"])
    return f"{best.get('label', '?')} ({best['score']:.2f})"


class DemoMonitor:
    """Subscribe to one vehicle's results and status and keep the figures of the live view."""

    def __init__(self, mqtt_config: MqttConfig, topics: Topics, *, stored_count: Callable[[], int] = lambda: 0,
                 error_count: Callable[[], int] = lambda: 0) -> None:
        self.topics = topics
        self._client = MqttClient(mqtt_config.replace(client_id=f"edge-sdk-demo-monitor-{topics.vehicle_id}", clean_start=True, status_topic=None, manual_ack=False))
        self._stored_count = stored_count
        self._error_count = error_count
        self._lock = threading.Lock()
        self._frame_times: collections.deque[float] = collections.deque()
        self._frames = 0
        self._first_frame_mono: float | None = None
        self._last_frame_mono: float | None = None
        self._last_label = ""
        self._vehicle: dict[str, Any] = {}
        self._status: dict[str, Any] = {}
        self._started_mono = time.monotonic()
        self.duration_s = 0.0

    def start(self, duration_s: float, connect_timeout: float = 10.0) -> None:
        self.duration_s = duration_s
        self._started_mono = time.monotonic()
        self._client.subscribe(self.topics.results, self._on_result, qos=1)
        self._client.subscribe(self.topics.status, self._on_status, qos=1)
        self._client.start()
        if not self._client.wait_connected(connect_timeout):
            logger.warning("demo monitor not connected after %.0f s; the live view stays empty until it connects", connect_timeout)

    def stop(self) -> None:
        self._client.stop(timeout=2.0, flush=False)

    def _on_result(self, message: InboundMessage) -> None:
        try:
            body = parse_envelope(message.payload).body
        except PayloadError as exc:
            logger.warning("demo monitor: invalid result on %s: %s", message.topic, exc)
            return
        if body.get("type") != "frame":
            return
        now = time.monotonic()
        with self._lock:
            if body.get("source") == "cloud":
                return
            self._frames += 1
            self._frame_times.append(now)
            if self._first_frame_mono is None:
                self._first_frame_mono = now
            self._last_frame_mono = now
            result = body.get("result")
            if isinstance(result, Mapping):
                self._last_label = _top_label(result)
            vehicle = body.get("vehicle")
            if isinstance(vehicle, dict):
                self._vehicle = vehicle

    def _on_status(self, message: InboundMessage) -> None:
        try:
            body = parse_envelope(message.payload).body
        except PayloadError as exc:
            logger.warning("demo monitor: invalid status on %s: %s", message.topic, exc)
            return
        if "uptime_s" not in body:
            return  # a bare presence record ("online" birth, "offline" at stop) carries no figures
        with self._lock:
            self._status = dict(body)

    def status(self) -> dict[str, Any]:
        """Return the latest health record received (empty before the first)."""
        with self._lock:
            return json.loads(json.dumps(self._status))

    def _average_fps(self) -> float:
        if self._first_frame_mono is None or self._last_frame_mono is None or self._frames < 2:
            return 0.0
        span = self._last_frame_mono - self._first_frame_mono
        return (self._frames - 1) / span if span > 0 else 0.0

    def snapshot(self) -> DemoSnapshot:
        """Return the live figures. Escalation counts are the vehicle's, from its latest status record."""
        now = time.monotonic()
        with self._lock:
            while self._frame_times and now - self._frame_times[0] > FPS_WINDOW_S:
                self._frame_times.popleft()
            window = min(FPS_WINDOW_S, max(now - self._started_mono, 1e-3))
            status = self._status
            ack = status.get("capture_to_ack_ms") or {}
            inference = status.get("inference_ms") or {}
            escalation = status.get("escalation") or {}
            spool = status.get("spool") or {}
            return DemoSnapshot(
                elapsed_s=now - self._started_mono,
                duration_s=self.duration_s,
                frames=self._frames,
                fps=len(self._frame_times) / window,
                fps_average=self._average_fps(),
                latency_p50_ms=ack.get("p50"),
                latency_p95_ms=ack.get("p95"),
                inference_ms=inference.get("p50"),
                escalations_sent=int(escalation.get("sent", 0)),
                escalations_answered=int(escalation.get("answered", 0)),
                escalations_timed_out=int(escalation.get("timed_out", 0)),
                spool_depth=spool.get("depth"),
                stored=self._stored_count(),
                last_label=self._last_label,
                vehicle=dict(self._vehicle),
                errors=self._error_count(),
            )
