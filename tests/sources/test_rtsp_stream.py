"""The URL source on a real RTSP stream: the dashcam clip's H.264 served by GStreamer's RTSP server on loopback."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_sdk.sources import LossSettings, SourceState, make_source
from tests.broker import free_port
from tests.conftest import IN_CI, REPO_ROOT
from tests.sources.test_sources import take_frames, wait_until

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = REPO_ROOT / "tests" / "rtsp_server.py"
START_TIMEOUT_S = 15.0
BINDINGS_CHECK = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "missing = [n for n in ('qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(n) is None]; "
    "print(' '.join(missing))"
)


def _server_unavailable() -> str | None:
    """Return why the RTSP server cannot run here, or None when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", BINDINGS_CHECK], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return "GStreamer's RTSP server bindings are missing: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0"
    if probe.stdout.strip():
        return f"GStreamer elements missing ({probe.stdout.strip()}): apt-get install gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
    return None


@dataclass
class RtspCamera:
    """A running RTSP server process and its stream URL."""

    port: int
    clip: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/clip"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--clip", str(self.clip)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        ready = selector.select(START_TIMEOUT_S) and self.process.stdout.readline().strip() == "ready"
        selector.close()
        if not ready:
            self.stop()
            raise RuntimeError(f"the RTSP server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def rtsp_camera(data_dir: Path) -> Iterator[RtspCamera]:
    reason = _server_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}; .ci/run installs it")
        pytest.skip(reason)
    camera = RtspCamera(free_port(), data_dir / "video" / "solidWhiteRight.mp4")
    camera.start()
    try:
        yield camera
    finally:
        camera.stop()


def test_rtsp_stream_delivers_decoded_frames(rtsp_camera):
    source = make_source("url", "rtsp-cam", url=rtsp_camera.url, open_timeout_s=10.0, read_timeout_s=5.0)
    with source:
        frames = take_frames(source, 30)
        state = source.state

    assert state is SourceState.RUNNING
    assert all(frame.image.shape == (540, 960, 3) for frame in frames)
    sequence = [frame.seq for frame in frames]
    assert sequence == sorted(set(sequence))


def test_rtsp_frozen_server_detected_and_reopened(rtsp_camera):
    loss = LossSettings(stall_timeout_s=1.0, reopen_initial_s=0.2, reopen_max_s=1.0)
    source = make_source("url", "rtsp-cam", url=rtsp_camera.url, open_timeout_s=3.0, read_timeout_s=2.0, loss=loss)
    with source:
        before = take_frames(source, 10)
        rtsp_camera.process.send_signal(signal.SIGSTOP)
        try:
            assert wait_until(lambda: source.state is not SourceState.RUNNING, 15.0), source.stats()
        finally:
            rtsp_camera.process.send_signal(signal.SIGCONT)
        after = take_frames(source, 10, timeout_s=30.0)
        stats = source.stats()

    assert stats.reopens >= 1
    assert "stall_timeout_s" in (stats.last_error or "")
    assert after[0].seq > before[-1].seq


def test_rtsp_restarted_server_reconnects(rtsp_camera):
    loss = LossSettings(stall_timeout_s=2.0, reopen_initial_s=0.2, reopen_max_s=1.0)
    source = make_source("url", "rtsp-cam", url=rtsp_camera.url, open_timeout_s=3.0, read_timeout_s=2.0, loss=loss)
    with source:
        before = take_frames(source, 10)
        rtsp_camera.stop()
        assert wait_until(lambda: source.state is not SourceState.RUNNING, 15.0), source.stats()
        rtsp_camera.start()
        after = take_frames(source, 10, timeout_s=30.0)
        stats = source.stats()

    assert stats.reopens >= 1
    assert after[0].seq > before[-1].seq
