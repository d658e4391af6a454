"""A V4L2 camera (`/dev/video0` or an index) read with OpenCV."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from edge_sdk.sources.base import Capture, LossSettings, Source
from edge_sdk.sources.errors import SourceConfigError, SourceOpenError

logger = logging.getLogger(__name__)


class DeviceSource(Source):
    """A V4L2 device. `width`, `height`, `fps` and `fourcc` (such as "MJPG") are requested from the driver, which may pick the nearest mode it supports."""

    kind = "device"

    def __init__(
        self,
        source_id: str,
        device: str | int,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        loss: LossSettings | None = None,
    ) -> None:
        super().__init__(source_id, loss=loss)
        if fourcc is not None and len(fourcc) != 4:
            raise SourceConfigError(f"source {source_id!r}: fourcc={fourcc!r} is invalid: give four characters such as 'MJPG' or 'YUYV'")
        self.device = int(device) if isinstance(device, str) and device.isdigit() else device
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc

    def describe(self) -> str:
        return f"V4L2 device {self.device}"

    def _open(self) -> Capture:
        if isinstance(self.device, str) and not Path(self.device).exists():
            raise SourceOpenError(f"source {self.source_id!r}: {self.device} does not exist (camera unplugged or driver not loaded)")
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceOpenError(f"source {self.source_id!r}: OpenCV cannot open {self.describe()}: check permissions (video group) and that no other process holds it")
        if self.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height), (cv2.CAP_PROP_FPS, self.fps)):
            if value:
                capture.set(prop, float(value))
        # One buffered frame: the grabber already keeps only the newest.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        logger.info(
            "source %s: opened %s at %dx%d %.1f fps",
            self.source_id,
            self.describe(),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(capture.get(cv2.CAP_PROP_FPS)),
        )
        return capture
