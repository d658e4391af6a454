"""A network stream (RTSP, HTTP MJPEG, HLS) read with OpenCV's FFmpeg backend."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit, urlunsplit

import cv2

from edge_sdk.sources.base import Capture, LossSettings, Source
from edge_sdk.sources.errors import SourceConfigError, SourceOpenError

logger = logging.getLogger(__name__)

SCHEMES = ("rtsp", "rtsps", "http", "https")
TRANSPORTS = ("tcp", "udp")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class UrlSource(Source):
    """An RTSP or HTTP stream.

    `rtsp_transport` "tcp" (the default) survives lossy links better than
    "udp". `open_timeout_s` and `read_timeout_s` bound FFmpeg's own waits;
    the stall timeout of the source still applies on top.
    """

    kind = "url"

    def __init__(
        self,
        source_id: str,
        url: str,
        *,
        rtsp_transport: str = "tcp",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        loss: LossSettings | None = None,
    ) -> None:
        super().__init__(source_id, loss=loss)
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            raise SourceConfigError(f"source {source_id!r}: url {redact_url(url)!r} has scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
        if rtsp_transport not in TRANSPORTS:
            raise SourceConfigError(f"source {source_id!r}: rtsp_transport={rtsp_transport!r} is invalid: use tcp or udp")
        self.url = url
        self.rtsp_transport = rtsp_transport
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s

    def describe(self) -> str:
        return f"stream {redact_url(self.url)}"

    def _open(self) -> Capture:
        # NOTE: OpenCV reads FFmpeg options from this process-wide variable, so
        # two URL sources with different transports opened at the same moment
        # may both get the last one set.
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.rtsp_transport}"
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000),
        ]  # fmt: skip
        capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise SourceOpenError(f"source {self.source_id!r}: cannot open {self.describe()} within {self.open_timeout_s} s: check the address and that the camera is up")
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        logger.info("source %s: opened %s", self.source_id, self.describe())
        return capture
