"""A GStreamer pipeline ending in `appsink`, read with OpenCV's GStreamer backend.

On a Jetson, the CSI camera is read with `nvarguscamerasrc` and converted to
BGR on the way out, for example:

    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1
    ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR
    ! appsink drop=true max-buffers=1

`drop=true max-buffers=1` keeps GStreamer itself from queueing stale frames.
"""

from __future__ import annotations

import functools
import logging

import cv2

from edge_sdk.sources.base import Capture, LossSettings, Source
from edge_sdk.sources.errors import SourceConfigError, SourceOpenError

logger = logging.getLogger(__name__)

JETSON_CSI_EXAMPLE = (
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 "
    "! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1"
)


@functools.cache
def opencv_has_gstreamer() -> bool:
    """Check whether this OpenCV build includes the GStreamer backend (pip's opencv-python wheels do not)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class GStreamerSource(Source):
    """Frames from a GStreamer pipeline string whose last element is an `appsink`."""

    kind = "gstreamer"

    def __init__(self, source_id: str, pipeline: str, *, loss: LossSettings | None = None) -> None:
        super().__init__(source_id, loss=loss)
        if "appsink" not in pipeline:
            raise SourceConfigError(f"source {source_id!r}: pipeline {pipeline!r} has no appsink: end it with `! appsink drop=true max-buffers=1`")
        self.pipeline = pipeline

    def describe(self) -> str:
        return f"GStreamer pipeline {self.pipeline!r}"

    def _open(self) -> Capture:
        if not opencv_has_gstreamer():
            raise SourceConfigError(
                f"source {self.source_id!r}: this OpenCV {cv2.__version__} build has no GStreamer backend: "
                "install an OpenCV built with GStreamer (on a Jetson, the JetPack python3-opencv package)"
            )
        capture = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not capture.isOpened():
            capture.release()
            raise SourceOpenError(f"source {self.source_id!r}: GStreamer could not start {self.describe()}: run it with gst-launch-1.0 to see why")
        logger.info("source %s: started %s", self.source_id, self.describe())
        return capture
