"""The behaviour every camera source shares: grabbing, latest-frame slot, loss detection, reopening.

A subclass only opens its input (`_open`) and may decide when a failed read
is the normal end of the stream (`_is_end_of_stream`) or pace its reads
(`_before_read`). The base class owns the threads:

- a supervisor thread opens the input, watches the reader for stalls and
  reopens it with exponential backoff after any loss;
- a reader thread per opened input grabs frames into a one-frame slot, so a
  slow consumer always gets the newest frame and each frame at most once.
  A frame that is overwritten before anyone took it is counted as dropped.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge_sdk.sources.errors import NoDecodableFramesError, SourceClosedError, SourceConfigError, SourceError, SourceOpenError
from edge_sdk.sources.frame import Frame

logger = logging.getLogger(__name__)

# Size (width, height) of the grayscale thumbnail compared to detect a frozen image.
_THUMBNAIL_SIZE = (32, 18)
_MONITOR_PERIOD_S = 0.05
_JOIN_TIMEOUT_S = 5.0


class SourceState(str, enum.Enum):
    IDLE = "idle"
    OPENING = "opening"
    RUNNING = "running"
    LOST = "lost"
    ENDED = "ended"
    FAILED = "failed"
    CLOSED = "closed"


TERMINAL_STATES = frozenset({SourceState.ENDED, SourceState.FAILED, SourceState.CLOSED})


class Capture(Protocol):
    """The part of `cv2.VideoCapture` a source reads through."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LossSettings:
    """When a source counts as lost and how it is reopened.

    A timeout of 0 disables that check. `max_reopen_attempts` 0 retries forever.
    """

    stall_timeout_s: float = 5.0
    frozen_timeout_s: float = 0.0
    frozen_tolerance: float = 0.5
    reopen_initial_s: float = 0.5
    reopen_max_s: float = 30.0
    max_reopen_attempts: int = 0

    def validate(self, source_id: str) -> None:
        for name in ("stall_timeout_s", "frozen_timeout_s", "frozen_tolerance", "reopen_initial_s", "reopen_max_s"):
            value = getattr(self, name)
            if value < 0:
                raise SourceConfigError(f"source {source_id!r}: {name}={value} is negative: use 0 to disable or a positive value")
        if self.reopen_initial_s <= 0 or self.reopen_max_s < self.reopen_initial_s:
            raise SourceConfigError(
                f"source {source_id!r}: reopen_initial_s={self.reopen_initial_s}, reopen_max_s={self.reopen_max_s}: "
                "the initial backoff must be positive and not above the maximum"
            )


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters of one source; ages and rates in seconds and frames per second."""

    source_id: str
    kind: str
    state: str
    captured: int
    delivered: int
    dropped: int
    reopens: int
    last_frame_age_s: float | None
    last_error: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "state": self.state,
            "captured": self.captured,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "reopens": self.reopens,
            "last_frame_age_s": None if self.last_frame_age_s is None else round(self.last_frame_age_s, 3),
            "last_error": self.last_error,
        }


class _ReadOutcome(enum.Enum):
    END = "end"
    LOST = "lost"
    STOPPED = "stopped"


class Source(abc.ABC):
    """A camera input with a grabber thread and a latest-frame slot.

    Use `start()`, then `get(timeout)` from one consumer thread, then `close()`.
    With `lossless=True` the reader waits until the previous frame was taken
    instead of overwriting it (for replaying recordings where every frame
    counts). The stall timeout does not run while it waits.
    """

    kind = "base"

    def __init__(self, source_id: str, *, loss: LossSettings | None = None, lossless: bool = False) -> None:
        if not source_id:
            raise SourceConfigError("source id is empty: give every source a short unique id such as 'front'")
        self.source_id = source_id
        self.loss = loss or LossSettings()
        self.loss.validate(source_id)
        self.lossless = lossless
        self.on_frame: Callable[[], None] | None = None

        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._state = SourceState.IDLE
        self._next_seq = 0
        self._captured = 0
        self._delivered = 0
        self._dropped = 0
        self._reopens = 0
        self._last_error: str | None = None
        self._last_activity = 0.0
        self._last_frame_mono: float | None = None
        # True while the reader waits on purpose (lockstep consumer, file pacing); the stall timeout skips that time.
        self._paused = False

        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._readers: list[threading.Thread] = []

    # -- subclass hooks -------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> Capture:
        """Open the input. Raise SourceOpenError to retry later, SourceConfigError or NoDecodableFramesError to give up."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return the input's name for log lines and errors, with any password removed."""

    def _is_end_of_stream(self, frames_since_open: int) -> bool:
        """Decide whether a failed read is the normal end of the input. Live inputs never end."""
        return False

    def _before_read(self, frames_since_open: int) -> None:
        """Called before each read; file sources sleep here to keep their frame rate."""

    # -- public API -----------------------------------------------------

    @property
    def state(self) -> SourceState:
        return self._state

    def start(self) -> None:
        """Open the input once in the caller's thread, then grab in the background.

        Raises the fatal errors (missing file, no decodable frame, missing
        backend) here; an input that is only unavailable now is retried.
        """
        if self._supervisor is not None:
            return
        capture: Capture | None = None
        self._set_state(SourceState.OPENING)
        try:
            capture = self._open()
        except (SourceConfigError, NoDecodableFramesError) as exc:
            self._fail(exc)
            raise
        except SourceOpenError as exc:
            self._record_error(exc)
            logger.warning("source %s: cannot open %s yet, retrying in the background: %s", self.source_id, self.describe(), exc)
        self._supervisor = threading.Thread(target=self._supervise, args=(capture,), name=f"source-{self.source_id}", daemon=True)
        self._supervisor.start()

    def get(self, timeout: float | None = None) -> Frame | None:
        """Take the newest frame not taken before, waiting up to `timeout` seconds.

        Returns None on timeout. Raises SourceClosedError once the source has
        ended, failed or been closed and no frame is left.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._state in TERMINAL_STATES, timeout)
            frame = self._latest
            if frame is not None:
                self._latest = None
                self._delivered += 1
                self._cond.notify_all()
                return frame
            if self._state in TERMINAL_STATES:
                raise SourceClosedError(f"source {self.source_id!r} is {self._state.value}" + (f": {self._last_error}" if self._last_error else ""))
            return None

    def has_frame(self) -> bool:
        return self._latest is not None

    @property
    def finished(self) -> bool:
        """True once the source is in a terminal state and its last frame was taken."""
        return self._state in TERMINAL_STATES and self._latest is None

    def stats(self) -> SourceStats:
        with self._cond:
            age = None if self._last_frame_mono is None else time.monotonic() - self._last_frame_mono
            return SourceStats(
                self.source_id, self.kind, self._state.value, self._captured, self._delivered, self._dropped, self._reopens, age, self._last_error
            )

    def close(self) -> None:
        """Stop the threads and release the input; safe to call twice."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        threads = ([self._supervisor] if self._supervisor else []) + list(self._readers)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("source %s: thread %s did not stop within %.0f s; leaving it behind", self.source_id, thread.name, _JOIN_TIMEOUT_S)
        with self._cond:
            if self._state not in (SourceState.ENDED, SourceState.FAILED):
                self._state = SourceState.CLOSED
            self._cond.notify_all()

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- supervisor -----------------------------------------------------

    def _supervise(self, capture: Capture | None) -> None:
        backoff = self.loss.reopen_initial_s
        attempts = 0
        while not self._stop.is_set():
            if capture is None:
                capture = self._try_open()
                if capture is None:
                    if self._state is SourceState.FAILED:
                        return
                    attempts += 1
                    if self.loss.max_reopen_attempts and attempts >= self.loss.max_reopen_attempts:
                        self._fail(SourceError(f"source {self.source_id!r}: gave up after {attempts} failed opens of {self.describe()}"))
                        return
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.loss.reopen_max_s)
                    continue

            outcome, frames = self._read_until_lost(capture)
            capture = None
            if outcome is _ReadOutcome.END:
                logger.info("source %s: end of %s after %d frames", self.source_id, self.describe(), self._captured)
                self._set_state(SourceState.ENDED)
                return
            if outcome is _ReadOutcome.STOPPED:
                return
            self._mark_lost()
            if frames > 0:
                backoff, attempts = self.loss.reopen_initial_s, 0
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.loss.reopen_max_s)

    def _try_open(self) -> Capture | None:
        self._set_state(SourceState.OPENING)
        try:
            capture = self._open()
        except (SourceConfigError, NoDecodableFramesError) as exc:
            self._fail(exc)
            return None
        except SourceOpenError as exc:
            self._record_error(exc)
            self._set_state(SourceState.LOST)
            logger.warning("source %s: reopen of %s failed: %s", self.source_id, self.describe(), exc)
            return None
        with self._cond:
            self._reopens += 1
        logger.info("source %s: reopened %s", self.source_id, self.describe())
        return capture

    def _read_until_lost(self, capture: Capture) -> tuple[_ReadOutcome, int]:
        """Run a reader thread on `capture` and watch it; return why it stopped and how many frames it read."""
        self._set_state(SourceState.RUNNING)
        self._last_activity = time.monotonic()
        abandon = threading.Event()
        done = threading.Event()
        box: dict[str, object] = {"outcome": _ReadOutcome.LOST, "frames": 0}
        reader = threading.Thread(
            target=self._read_loop, args=(capture, abandon, done, box), name=f"source-{self.source_id}-reader", daemon=True
        )
        self._readers = [t for t in self._readers if t.is_alive()] + [reader]
        reader.start()

        while not done.wait(_MONITOR_PERIOD_S):
            if self._stop.is_set():
                abandon.set()
                with self._cond:
                    self._cond.notify_all()
                return _ReadOutcome.STOPPED, int(box["frames"])  # type: ignore[call-overload]
            # NOTE: a reader stuck inside capture.read() cannot be interrupted, so
            # it is abandoned and releases its capture only if the read returns.
            stalled_for = time.monotonic() - self._last_activity
            if self.loss.stall_timeout_s and not self._paused and stalled_for > self.loss.stall_timeout_s:
                abandon.set()
                self._record_error(SourceError(f"no frame from {self.describe()} for {stalled_for:.1f} s (stall_timeout_s={self.loss.stall_timeout_s})"))
                logger.warning("source %s: stalled: %s", self.source_id, self._last_error)
                return _ReadOutcome.LOST, int(box["frames"])  # type: ignore[call-overload]
        return box["outcome"], int(box["frames"])  # type: ignore[return-value, call-overload]

    # -- reader ---------------------------------------------------------

    def _read_loop(self, capture: Capture, abandon: threading.Event, done: threading.Event, box: dict[str, object]) -> None:
        frames = 0
        frozen = _FrozenDetector(self.loss.frozen_timeout_s, self.loss.frozen_tolerance)
        try:
            while not abandon.is_set():
                self._before_read(frames)
                ok, image = capture.read()
                if abandon.is_set():
                    return
                if not ok or image is None:
                    self._on_failed_read(frames, box)
                    return
                frames += 1
                box["frames"] = frames
                now = time.monotonic()
                self._last_activity = now
                if frozen.update(image, now):
                    self._record_error(SourceError(f"image from {self.describe()} unchanged for {self.loss.frozen_timeout_s} s (frozen_timeout_s)"))
                    logger.warning("source %s: frozen: %s", self.source_id, self._last_error)
                    box["outcome"] = _ReadOutcome.LOST
                    return
                self._deliver(image, now, abandon)
        except cv2.error as exc:
            self._record_error(exc)
            logger.warning("source %s: OpenCV error while reading %s: %s", self.source_id, self.describe(), exc)
            box["outcome"] = _ReadOutcome.LOST
        finally:
            done.set()
            try:
                capture.release()
            except cv2.error as exc:
                logger.debug("source %s: release failed: %s", self.source_id, exc)

    def _on_failed_read(self, frames: int, box: dict[str, object]) -> None:
        if self._is_end_of_stream(frames):
            box["outcome"] = _ReadOutcome.END
            return
        self._record_error(SourceError(f"read from {self.describe()} failed after {frames} frames"))
        logger.warning("source %s: %s", self.source_id, self._last_error)
        box["outcome"] = _ReadOutcome.LOST

    def _deliver(self, image: np.ndarray, t_mono: float, abandon: threading.Event) -> None:
        with self._cond:
            if self.lossless and self._latest is not None:
                self._paused = True
                self._cond.wait_for(lambda: self._latest is None or abandon.is_set() or self._stop.is_set())
                self._paused = False
                self._last_activity = time.monotonic()
                if self._latest is not None:
                    return
            if self._latest is not None:
                self._dropped += 1
                logger.log(5, "source %s: dropped frame %d", self.source_id, self._latest.seq)
            self._latest = Frame(self.source_id, self._next_seq, t_mono, time.time(), image)
            self._next_seq += 1
            self._captured += 1
            self._last_frame_mono = t_mono
            self._cond.notify_all()
        callback = self.on_frame
        if callback is not None:
            callback()

    # -- state ----------------------------------------------------------

    def _set_state(self, state: SourceState) -> None:
        with self._cond:
            if self._state in TERMINAL_STATES:
                return
            self._state = state
            self._cond.notify_all()
        callback = self.on_frame
        if callback is not None and state in TERMINAL_STATES:
            callback()

    def _mark_lost(self) -> None:
        """Drop the frame in the slot: after a loss it is stale and must not reach the model as new."""
        with self._cond:
            if self._latest is not None:
                self._dropped += 1
                self._latest = None
        self._set_state(SourceState.LOST)

    def _record_error(self, exc: BaseException) -> None:
        self._last_error = str(exc)

    def _fail(self, exc: BaseException) -> None:
        self._record_error(exc)
        logger.error("source %s: giving up on %s: %s", self.source_id, self.describe(), exc)
        self._set_state(SourceState.FAILED)


class _FrozenDetector:
    """Reports when the image stayed the same (mean absolute difference of a small thumbnail) for too long."""

    def __init__(self, timeout_s: float, tolerance: float) -> None:
        self.timeout_s = timeout_s
        self.tolerance = tolerance
        self._previous: np.ndarray | None = None
        self._unchanged_since: float | None = None

    def update(self, image: np.ndarray, now: float) -> bool:
        if not self.timeout_s:
            return False
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumbnail = cv2.resize(gray, _THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._previous = self._previous, thumbnail
        if previous is None or float(np.mean(np.abs(thumbnail - previous))) > self.tolerance:
            self._unchanged_since = None
            return False
        if self._unchanged_since is None:
            self._unchanged_since = now
        return now - self._unchanged_since > self.timeout_s
