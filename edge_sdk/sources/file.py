"""A video file read with OpenCV, looping or not, paced at its own frame rate or as fast as it decodes."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge_sdk.sources.base import Capture, LossSettings, Source
from edge_sdk.sources.errors import NoDecodableFramesError, SourceConfigError

logger = logging.getLogger(__name__)

PACES = ("realtime", "fast", "lockstep")
_FALLBACK_FPS = 25.0


class _FirstFrameCapture:
    """A capture whose first frame was already decoded to prove the file is readable."""

    def __init__(self, capture: cv2.VideoCapture, first: np.ndarray, loop: bool) -> None:
        self._capture = capture
        self._first: np.ndarray | None = first
        self._loop = loop

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._first is not None:
            first, self._first = self._first, None
            return True, first
        ok, image = self._capture.read()
        if not ok and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        return ok, image

    def release(self) -> None:
        self._capture.release()


class FileSource(Source):
    """Frames of a video file.

    `pace`: "realtime" sleeps to keep the file's own frame rate (25 fps when
    the container has no frame rate), "fast" reads as fast as it decodes and lets
    the latest-frame slot drop what the consumer misses, "lockstep" reads the
    next frame only after the consumer took the previous one, so no frame is
    dropped. With `loop` the file restarts at its end; without, the end of the
    file ends the source cleanly.
    """

    kind = "file"

    def __init__(self, source_id: str, path: str | Path, *, loop: bool = False, pace: str = "realtime", loss: LossSettings | None = None) -> None:
        if pace not in PACES:
            raise SourceConfigError(f"source {source_id!r}: pace={pace!r} is invalid: use one of {', '.join(PACES)}")
        super().__init__(source_id, loss=loss, lossless=pace == "lockstep")
        self.path = Path(path)
        self.loop = loop
        self.pace = pace
        self.fps = _FALLBACK_FPS
        self._started_at = 0.0

    def describe(self) -> str:
        return f"file {self.path}"

    def _open(self) -> Capture:
        if not self.path.is_file():
            raise SourceConfigError(f"source {self.source_id!r}: video file {self.path} not found: check the path in the source's `path` key")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise NoDecodableFramesError(
                f"source {self.source_id!r}: {self.path} decoded zero frames because OpenCV cannot open it as a video: "
                "check that it is a complete video file (for example H.264 in MP4)"
            )
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise NoDecodableFramesError(
                f"source {self.source_id!r}: {self.path} decoded zero frames: the file is empty, truncated or in a codec this OpenCV build lacks"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else _FALLBACK_FPS
        self._started_at = time.monotonic()
        logger.info("source %s: opened %s (%.2f fps, pace %s, loop %s)", self.source_id, self.path, self.fps, self.pace, self.loop)
        return _FirstFrameCapture(capture, first, self.loop)

    def _is_end_of_stream(self, frames_since_open: int) -> bool:
        # A looping file rewinds at its end, so a failed read means it broke.
        # Without looping, a failed read after at least one frame is the end.
        return not self.loop and frames_since_open > 0

    def _before_read(self, frames_since_open: int) -> None:
        if self.pace != "realtime":
            return
        due = self._started_at + frames_since_open / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            # Waiting for the next frame's time is not a stall, even for a file slower than stall_timeout_s.
            self._paused = True
            self._stop.wait(delay)
            self._last_activity = time.monotonic()
            self._paused = False
