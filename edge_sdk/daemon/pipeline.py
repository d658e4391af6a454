"""The three overlapping stages: capture (source threads), inference (one thread per model), publishing.

Each source's grabber thread fills its latest-frame slot. One inference
thread per model takes frames from the sources that use the model, round
robin, at most `fps_limit` frames per second each, and puts results on a
bounded queue. The publishing thread turns results into messages (results,
events, summaries, escalations). A full queue holds back inference, so the
extra frames are dropped (and counted) in the sources' slots, never in
between stages.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_sdk.daemon.stats import Counters
from edge_sdk.latency import LatencyWindow
from edge_sdk.package.results import InferenceResult
from edge_sdk.sources import Frame, Source, SourceClosedError

logger = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.2
_PUT_RETRY_S = 0.2
_ERROR_LOG_EVERY = 100


class Predictor(Protocol):
    """Interface the pipeline needs of a model; `edge_sdk.runtime.Model` implements it."""

    def predict(self, image_bgr: np.ndarray) -> InferenceResult: ...


@dataclass(frozen=True, slots=True)
class Processed:
    """One frame after inference; `t_infer_start`/`t_infer_end` are monotonic seconds."""

    frame: Frame
    model_name: str
    result: InferenceResult
    t_infer_start: float
    t_infer_end: float


@dataclass(frozen=True, slots=True)
class SourceFinished:
    """Marker put on the queue after a source's last frame."""

    source_id: str
    state: str


@dataclass(slots=True)
class SourceSlot:
    """A source as one inference thread schedules it; `fps_limit` 0 means no limit."""

    source: Source
    fps_limit: float = 0.0
    next_due: float = 0.0
    finished: bool = False


class PipelineMetrics:
    """Counters and latency windows shared by the stages."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.inference_ms = LatencyWindow()
        self.capture_to_result_ms = LatencyWindow()
        self.capture_to_ack_ms = LatencyWindow()


class InferenceWorker:
    """Runs one model over its sources in a thread of its own."""

    def __init__(
        self,
        model_name: str,
        model: Predictor,
        slots: Sequence[SourceSlot],
        output: queue.Queue[object],
        stop: threading.Event,
        metrics: PipelineMetrics,
    ) -> None:
        self.model_name = model_name
        self.model = model
        self.slots = list(slots)
        self.output = output
        self.stop = stop
        self.metrics = metrics
        self._wake = threading.Event()
        self._next_index = 0
        self._errors = 0
        self._thread = threading.Thread(target=self._run, name=f"inference-{model_name}", daemon=True)
        for slot in self.slots:
            slot.source.on_frame = self._wake.set

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; return False when it is still running."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        logger.info("inference %s: started on sources %s", self.model_name, ", ".join(s.source.source_id for s in self.slots))
        while not self.stop.is_set() and not all(slot.finished for slot in self.slots):
            self._wake.clear()
            slot, wait_s = self._pick(time.monotonic())
            if slot is None:
                self._wake.wait(wait_s)
                continue
            try:
                frame = slot.source.get(timeout=0)
            except SourceClosedError:
                self._finish(slot)
                continue
            if frame is None:
                continue
            if slot.fps_limit:
                # Keep the average rate at the limit without a burst after a slow stretch.
                period = 1.0 / slot.fps_limit
                now = time.monotonic()
                slot.next_due = max(slot.next_due, now - period) + period if slot.next_due else now + period
            self._infer(frame)
        logger.info("inference %s: stopped", self.model_name)

    def _pick(self, now: float) -> tuple[SourceSlot | None, float]:
        """Return the next slot with a frame that is due, round robin, or how long to wait."""
        wait_s = _IDLE_WAIT_S
        count = len(self.slots)
        for offset in range(count):
            slot = self.slots[(self._next_index + offset) % count]
            if slot.finished:
                continue
            if slot.source.finished:
                # Let get() raise so the slot is finished with its final state.
                return slot, 0.0
            if not slot.source.has_frame():
                continue
            if slot.next_due > now:
                wait_s = min(wait_s, slot.next_due - now)
                continue
            self._next_index = (self._next_index + offset + 1) % count
            return slot, 0.0
        return None, wait_s

    def _infer(self, frame: Frame) -> None:
        started = time.monotonic()
        try:
            result = self.model.predict(frame.image)
        except Exception as exc:  # noqa: BLE001 - a bad frame or a model error must not stop the daemon
            self._errors += 1
            self.metrics.counters.add("inference_errors")
            if self._errors % _ERROR_LOG_EVERY == 1:
                logger.error("inference %s: frame %s failed (%d failures so far): %s", self.model_name, frame.frame_id, self._errors, exc)
            return
        finished = time.monotonic()
        self.metrics.inference_ms.add_seconds(finished - started)
        self.metrics.counters.add("frames_inferred")
        self._put(Processed(frame, self.model_name, result, started, finished))

    def _finish(self, slot: SourceSlot) -> None:
        slot.finished = True
        state = slot.source.state.value
        logger.info("inference %s: source %s finished (%s)", self.model_name, slot.source.source_id, state)
        self._put(SourceFinished(slot.source.source_id, state))

    def _put(self, item: object) -> None:
        while True:
            try:
                self.output.put(item, timeout=_PUT_RETRY_S)
                return
            except queue.Full:
                if self.stop.is_set():
                    self.metrics.counters.add("results_lost_at_shutdown")
                    logger.warning("inference %s: publishing queue full at shutdown, result dropped", self.model_name)
                    return
