"""Camera sources on the real dashcam clip decoded by OpenCV."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.sources import (
    LossSettings,
    NoDecodableFramesError,
    SourceClosedError,
    SourceConfigError,
    SourceState,
    make_source,
)
from edge_sdk.sources.file import FileSource
from edge_sdk.sources.gstreamer import opencv_has_gstreamer
from tests.broker import free_port

CLIP_FRAMES = 221


@pytest.fixture
def clip(data_dir: Path) -> Path:
    return data_dir / "video" / "solidWhiteRight.mp4"


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def take_frames(source, count: int, timeout_s: float = 20.0) -> list:
    """Take `count` frames from a running source, failing with its stats after `timeout_s`."""
    frames: list = []

    def collect() -> bool:
        frame = source.get(timeout=0.2)
        if frame is not None:
            frames.append(frame)
        return len(frames) >= count

    assert wait_until(collect, timeout_s), f"got {len(frames)} of {count} frames: {source.stats()}"
    return frames


def drain(source, consumer_delay_s: float = 0.0, limit: int = 10 * CLIP_FRAMES) -> list:
    """Take frames until the source finishes; optionally sleep after each to act as a slow consumer.

    Fails after `limit` frames, so a source that never ends fails the test instead of hanging it.
    """
    frames = []
    while len(frames) < limit:
        try:
            frame = source.get(timeout=5.0)
        except SourceClosedError:
            return frames
        if frame is not None:
            frames.append(frame)
            if consumer_delay_s:
                time.sleep(consumer_delay_s)
    raise AssertionError(f"source {source.source_id} delivered {limit} frames without ending: {source.stats()}")


class StallingFileSource(FileSource):
    """A file source whose first opened capture stops delivering after `stall_after` frames."""

    def __init__(self, *args, stall_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stall_after = stall_after
        self.opens = 0
        self.release_stall = threading.Event()

    def _open(self):
        capture = super()._open()
        self.opens += 1
        if self.opens > 1:
            return capture
        return _StallingCapture(capture, self.stall_after, self.release_stall)


class _StallingCapture:
    def __init__(self, capture, stall_after: int, release: threading.Event) -> None:
        self.capture, self.stall_after, self.release_event, self.reads = capture, stall_after, release, 0

    def read(self):
        self.reads += 1
        if self.reads > self.stall_after:
            self.release_event.wait(30)
            return False, None
        return self.capture.read()

    def release(self) -> None:
        self.capture.release()


class FrozenCapture:
    """Returns the same image for ever, as a camera whose encoder hung would."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    def read(self):
        time.sleep(0.01)
        return True, self.image.copy()

    def release(self) -> None:
        pass


def test_file_lockstep_delivers_every_frame_in_order(clip: Path) -> None:
    with make_source("file", "front", path=clip, pace="lockstep") as source:
        frames = drain(source)
        stats = source.stats()
    assert [f.seq for f in frames] == list(range(CLIP_FRAMES))
    assert frames[0].image.shape == (540, 960, 3)
    assert all(f.source_id == "front" for f in frames)
    assert all(b.t_mono >= a.t_mono for a, b in zip(frames, frames[1:]))
    assert stats.state == SourceState.ENDED.value
    assert stats.dropped == 0


def test_file_slow_consumer_never_sees_frame_twice(clip: Path) -> None:
    with make_source("file", "front", path=clip, pace="fast") as source:
        frames = drain(source, consumer_delay_s=0.02)
        stats = source.stats()
    seqs = [f.seq for f in frames]
    assert len(set(seqs)) == len(seqs)
    assert seqs == sorted(seqs)
    assert stats.dropped > 0
    assert stats.captured == CLIP_FRAMES
    assert stats.delivered == len(frames)
    assert stats.delivered + stats.dropped == stats.captured


def test_file_realtime_pace_keeps_frame_rate(clip: Path) -> None:
    with make_source("file", "front", path=clip, pace="realtime") as source:
        frames = [source.get(timeout=5.0) for _ in range(10)]
        started_at, fps = source._started_at, source.fps
    assert fps == 25.0
    for frame in frames:
        assert frame is not None
        # Pacing only delays reads, so frame k is never grabbed before k / fps.
        assert frame.t_mono >= started_at + frame.seq / fps


def test_file_loop_restarts_at_end(clip: Path) -> None:
    with make_source("file", "front", path=clip, pace="lockstep", loop=True) as source:
        seqs = [source.get(timeout=5.0).seq for _ in range(CLIP_FRAMES + 20)]
        assert source.state is SourceState.RUNNING
    assert seqs == list(range(CLIP_FRAMES + 20))


def test_file_truncated_copy_ends_cleanly(clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    data = clip.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with make_source("file", "front", path=truncated, pace="lockstep") as source:
        frames = drain(source)
        stats = source.stats()
    assert 0 < len(frames) < CLIP_FRAMES
    assert stats.state == SourceState.ENDED.value


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 100], ids=["empty", "garbage"])
def test_file_without_decodable_frames_raises(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    source = make_source("file", "front", path=bad)
    with pytest.raises(NoDecodableFramesError) as excinfo:
        source.start()
    source.close()
    assert str(bad) in str(excinfo.value)
    assert source.state is SourceState.FAILED


def test_file_missing_raises_config_error(tmp_path: Path) -> None:
    source = make_source("file", "front", path=tmp_path / "nope.mp4")
    with pytest.raises(SourceConfigError, match="nope.mp4"):
        source.start()
    source.close()


def test_stalled_source_detected_and_reopened(clip: Path) -> None:
    loss = LossSettings(stall_timeout_s=0.5, reopen_initial_s=0.1)
    source = StallingFileSource("front", clip, pace="fast", loss=loss, stall_after=10)
    with source:
        seen = []
        stalled_at = None
        while source.stats().reopens == 0:
            frame = source.get(timeout=3.0)
            if frame is not None:
                seen.append(frame.seq)
            elif stalled_at is None:
                stalled_at = time.monotonic()
            assert len(seen) < CLIP_FRAMES, "the source never stalled"
            assert stalled_at is None or time.monotonic() - stalled_at < 10, "stall not detected"
        after = source.get(timeout=5.0)
        stats = source.stats()
        source.release_stall.set()
    assert stats.reopens == 1
    assert "stall_timeout_s" in (stats.last_error or "")
    assert after is not None
    assert after.seq > max(seen)


def test_stall_detected_within_timeout(clip: Path) -> None:
    loss = LossSettings(stall_timeout_s=0.5, reopen_initial_s=5.0, reopen_max_s=5.0)
    source = StallingFileSource("front", clip, pace="fast", loss=loss, stall_after=3)
    with source:
        assert wait_until(lambda: source.stats().captured == 3, 5.0)
        stalled_since = time.monotonic()
        assert wait_until(lambda: source.state is SourceState.LOST, 5.0)
        detected_after = time.monotonic() - stalled_since
        assert not source.has_frame(), "a stale frame stayed in the slot after the loss"
        source.release_stall.set()
    # Timing is loose on purpose: the check only rules out "never" or "much later".
    assert detected_after < 0.5 + 2.0


def test_frozen_image_counts_as_lost(clip: Path) -> None:
    image = np.full((540, 960, 3), 90, np.uint8)

    class FrozenSource(FileSource):
        def _open(self):
            return FrozenCapture(image)

    loss = LossSettings(stall_timeout_s=5.0, frozen_timeout_s=0.3, reopen_initial_s=0.1)
    with FrozenSource("front", clip, pace="fast", loss=loss) as source:
        assert wait_until(lambda: source.stats().reopens >= 1, 10.0)
        stats = source.stats()
    assert "frozen_timeout_s" in (stats.last_error or "")


def test_url_unreachable_retries_then_fails() -> None:
    loss = LossSettings(reopen_initial_s=0.05, reopen_max_s=0.1, max_reopen_attempts=2)
    # free_port() closes its socket, so nothing listens there and the open fails at once.
    source = make_source("url", "cam", url=f"rtsp://127.0.0.1:{free_port()}/stream", open_timeout_s=1.0, loss=loss)
    with source:
        assert wait_until(lambda: source.state is SourceState.FAILED, 20.0)
        with pytest.raises(SourceClosedError, match="gave up"):
            source.get(timeout=0.1)


def test_url_rejects_unknown_scheme() -> None:
    with pytest.raises(SourceConfigError, match="ftp"):
        make_source("url", "cam", url="ftp://127.0.0.1/x")


def test_url_password_redacted_in_description() -> None:
    source = make_source("url", "cam", url="rtsp://admin:secret@127.0.0.1:8554/live")
    assert "secret" not in source.describe()
    assert "admin:***@127.0.0.1:8554" in source.describe()


def test_device_missing_retries_until_limit() -> None:
    loss = LossSettings(reopen_initial_s=0.05, reopen_max_s=0.1, max_reopen_attempts=2)
    with make_source("device", "cab", device="/dev/video-does-not-exist", loss=loss) as source:
        assert wait_until(lambda: source.state is SourceState.FAILED, 10.0)
        assert "does not exist" in (source.stats().last_error or "") or "gave up" in (source.stats().last_error or "")


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV build has GStreamer")
def test_gstreamer_without_backend_raises() -> None:
    source = make_source("gstreamer", "csi", pipeline="videotestsrc ! appsink")
    with pytest.raises(SourceConfigError, match="GStreamer"):
        source.start()
    source.close()


def test_gstreamer_pipeline_needs_appsink() -> None:
    with pytest.raises(SourceConfigError, match="appsink"):
        make_source("gstreamer", "csi", pipeline="videotestsrc ! autovideosink")


def test_unknown_kind_raises() -> None:
    with pytest.raises(SourceConfigError, match="webcam"):
        make_source("webcam", "x")


def test_close_is_idempotent(clip: Path) -> None:
    source = make_source("file", "front", path=clip, pace="realtime")
    source.start()
    source.close()
    source.close()
    assert source.state is SourceState.CLOSED


def write_slow_video(path: Path, fps: float, frames: int) -> Path:
    """Encode a short MJPEG AVI at a low frame rate with OpenCV's own writer."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened(), "this OpenCV build cannot write MJPEG AVI"
    for index in range(frames):
        writer.write(np.full((120, 160, 3), 20 * index, np.uint8))
    writer.release()
    return path


def test_file_pacing_is_not_a_stall(tmp_path: Path) -> None:
    video = write_slow_video(tmp_path / "slow.avi", fps=4.0, frames=4)
    loss = LossSettings(stall_timeout_s=0.1, reopen_initial_s=0.05)
    with make_source("file", "slow", path=video, pace="realtime", loss=loss) as source:
        frames = drain(source, limit=20)
        stats = source.stats()
    assert [f.seq for f in frames] == [0, 1, 2, 3]
    assert stats.reopens == 0
    assert stats.last_error is None
    assert stats.state == SourceState.ENDED.value
