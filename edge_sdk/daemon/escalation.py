"""Vehicle side of cloud escalation: which frames go up, the uplink budget, and matching the replies.

The pipeline calls `Escalator.offer()` for each result; it decides at once
(policy, room for another pending request) and never blocks. A worker
thread encodes the JPEG, spends the uplink budget and publishes the request.
`handle_reply()` matches a reply by correlation id and hands the merged
reply to `on_reply`; requests not answered within `timeout_s` are
counted as timed out, and a reply arriving after that is counted as late.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge_sdk.daemon.config import EscalationSection, UplinkSection
from edge_sdk.daemon.stats import Counters
from edge_sdk.latency import LatencyWindow
from edge_sdk.package.results import InferenceResult

logger = logging.getLogger(__name__)

_QUEUE_SIZE = 4
_SWEEP_PERIOD_S = 0.2
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


class EscalationPolicy:
    """Decides whether a result's frame is sent to the cloud, and why."""

    def __init__(self, section: EscalationSection, rng: random.Random | None = None) -> None:
        self.section = section
        self._labels = frozenset(section.labels)
        self._rng = rng or random.Random()

    def decide(self, result: InferenceResult) -> str | None:
        """Return the reason ("low_score", "label", "sample") or None to keep the frame on the vehicle."""
        if not self.section.enabled:
            return None
        if self.section.below_score > 0 and result.top_score < self.section.below_score:
            return "low_score"
        if self._labels:
            labels = {d.label for d in result.detections} | {c.label for c in result.classifications[:1]}
            if labels & self._labels:
                return "label"
        if self.section.sample_rate > 0 and self._rng.random() < self.section.sample_rate:
            return "sample"
        return None


class UplinkBudget:
    """A token bucket (bytes per second, burst size) plus a cap per UTC day. Thread-safe."""

    def __init__(self, section: UplinkSection, clock: Callable[[], float] = time.monotonic) -> None:
        self.section = section
        self._clock = clock
        self._tokens = float(section.burst_bytes)
        self._updated = clock()
        self._day = self._today()
        self._spent_today = 0
        self._lock = threading.Lock()

    @staticmethod
    def _today() -> datetime.date:
        return datetime.datetime.now(datetime.timezone.utc).date()

    def try_spend(self, size: int) -> bool:
        """Take `size` bytes from the budget if both the bucket and the day allow it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.section.burst_bytes), self._tokens + (now - self._updated) * self.section.bytes_per_s)
            self._updated = now
            today = self._today()
            if today != self._day:
                self._day, self._spent_today = today, 0
            if size > self._tokens or self._spent_today + size > self.section.bytes_per_day:
                return False
            self._tokens -= size
            self._spent_today += size
            return True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"tokens_bytes": int(self._tokens), "spent_today_bytes": self._spent_today, "day_limit_bytes": self.section.bytes_per_day}


def encode_jpeg(image: np.ndarray, max_side: int, quality: int) -> bytes:
    """Encode a BGR image as JPEG, downscaled so its longest side is at most `max_side` pixels."""
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot JPEG-encode an empty {width}x{height} image: the source delivered no pixels")
    scale = max_side / max(height, width)
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding of a {width}x{height} image failed: check that it is a uint8 BGR image")
    return buffer.tobytes()


@dataclass(frozen=True, slots=True)
class EscalationTicket:
    """Data the pipeline hands over for one escalated frame."""

    correlation_id: str
    reason: str
    frame_id: str
    source_id: str
    frame_seq: int
    capture_time: float
    edge_result: InferenceResult
    image: np.ndarray
    section: EscalationSection


@dataclass(frozen=True, slots=True)
class CloudReply:
    """A cloud reply matched to its request. `rtt_ms` runs from publishing the request to receiving the reply."""

    ticket: EscalationTicket
    result: dict[str, Any] | None
    error: str | None
    model: dict[str, str]
    worker_id: str
    rtt_ms: float


@dataclass(slots=True)
class _Pending:
    ticket: EscalationTicket
    sent_mono: float | None = None
    deadline: float = 0.0


# (ticket, jpeg bytes) -> payload size in bytes once published, or None when the budget refused it.
RequestSender = Callable[[EscalationTicket, bytes, Callable[[int], bool]], int | None]


class Escalator:
    """Sends escalation requests off the pipeline's thread and matches the replies."""

    def __init__(self, budget: UplinkBudget, send: RequestSender, on_reply: Callable[[CloudReply], None]) -> None:
        self.budget = budget
        self._send = send
        self._on_reply = on_reply
        self._queue: queue.Queue[EscalationTicket] = queue.Queue(_QUEUE_SIZE)
        self._pending: dict[str, _Pending] = {}
        self._expired: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters = Counters()
        self.rtt = LatencyWindow()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="escalator", daemon=True)
            self._thread.start()

    def offer(self, policy: EscalationPolicy, result: InferenceResult, *, frame_id: str, source_id: str, frame_seq: int, capture_time: float, image: np.ndarray) -> EscalationTicket | None:
        """Queue the frame for escalation when the policy selects it and there is room; never blocks."""
        reason = policy.decide(result)
        if reason is None:
            return None
        self.counters.add("candidates")
        with self._lock:
            if len(self._pending) >= policy.section.max_pending:
                self.counters.add("skipped_pending_full")
                return None
            ticket = EscalationTicket(secrets.token_hex(8), reason, frame_id, source_id, frame_seq, capture_time, result, image, policy.section)
            try:
                self._queue.put_nowait(ticket)
            except queue.Full:
                self.counters.add("skipped_queue_full")
                return None
            self._pending[ticket.correlation_id] = _Pending(ticket)
        return ticket

    def handle_reply(self, correlation_id: str, result: dict[str, Any] | None, error: str | None, model: dict[str, str], worker_id: str) -> None:
        """Match a cloud reply; unknown, late or duplicate replies are counted and dropped."""
        received = time.monotonic()
        with self._lock:
            pending = self._pending.get(correlation_id)
            if pending is None or pending.sent_mono is None:
                name = "late_replies" if correlation_id in self._expired else "unmatched_replies"
                self.counters.add(name)
                logger.info("escalation: dropped %s reply for correlation id %s", name.split("_")[0], correlation_id)
                return
            del self._pending[correlation_id]
        rtt_ms = (received - pending.sent_mono) * 1000.0
        self.rtt.add_ms(rtt_ms)
        self.counters.add("errors" if error else "answered")
        self._on_reply(CloudReply(pending.ticket, result, error, model, worker_id, rtt_ms))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._pending)
        return {**self.counters.snapshot(), "pending": pending, "rtt_ms": self.rtt.percentiles(50, 95), "budget": self.budget.stats()}

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for queued requests to go out and pending ones to get a reply or time out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._pending and self._queue.empty()
            if idle:
                return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("escalation: sender thread did not stop within %.1f s", timeout)
            self._thread = None

    # -- worker ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._expire(time.monotonic())
            try:
                ticket = self._queue.get(timeout=_SWEEP_PERIOD_S)
            except queue.Empty:
                continue
            self._publish(ticket)

    def _publish(self, ticket: EscalationTicket) -> None:
        try:
            jpeg = encode_jpeg(ticket.image, ticket.section.max_side, ticket.section.jpeg_quality)
            size = self._send(ticket, jpeg, self.budget.try_spend)
        except Exception:  # noqa: BLE001 - one bad frame must not stop escalation
            logger.exception("escalation: sending frame %s (correlation id %s) failed", ticket.frame_id, ticket.correlation_id)
            with self._lock:
                self._pending.pop(ticket.correlation_id, None)
            self.counters.add("send_errors")
            return
        with self._lock:
            if size is None:
                self._pending.pop(ticket.correlation_id, None)
                self.counters.add("skipped_budget")
                return
            pending = self._pending.get(ticket.correlation_id)
            if pending is not None:
                # The reply needs the ticket's metadata, not its full-size image.
                pending.ticket = dataclasses.replace(ticket, image=_NO_IMAGE)
                pending.sent_mono = time.monotonic()
                pending.deadline = pending.sent_mono + ticket.section.timeout_s
        self.counters.add("sent")
        self.counters.add("sent_bytes", size)

    def _expire(self, now: float) -> None:
        with self._lock:
            expired = [cid for cid, p in self._pending.items() if p.sent_mono is not None and now > p.deadline]
            for cid in expired:
                del self._pending[cid]
                self._expired[cid] = now
            # Remember expired ids long enough to tell a late reply from an unknown one.
            for cid in [cid for cid, t in self._expired.items() if now - t > 600.0]:
                del self._expired[cid]
        if expired:
            self.counters.add("timed_out", len(expired))
            logger.info("escalation: %d requests timed out without a cloud reply", len(expired))
