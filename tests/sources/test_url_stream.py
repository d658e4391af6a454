"""The URL source on a real HTTP MJPEG stream from a loopback server, decoded by OpenCV's FFmpeg backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_sdk.sources import LossSettings, SourceState, make_source
from tests.mjpeg_server import MjpegServer, encode_clip
from tests.sources.test_sources import take_frames, wait_until

CLIP_SIZE = (540, 960, 3)


@pytest.fixture
def camera(data_dir: Path):
    jpegs = encode_clip(data_dir / "video" / "solidWhiteRight.mp4", limit=40)
    with MjpegServer(jpegs, fps=30.0) as server:
        yield server


def test_url_stream_delivers_decoded_frames(camera):
    source = make_source("url", "ipcam", url=camera.url, open_timeout_s=5.0, read_timeout_s=2.0)
    with source:
        frames = take_frames(source, 20)
        state = source.state

    assert state is SourceState.RUNNING
    assert all(frame.image.shape == CLIP_SIZE for frame in frames)
    assert all(frame.source_id == "ipcam" for frame in frames)
    sequence = [frame.seq for frame in frames]
    assert sequence == sorted(set(sequence))
    assert camera.connections == 1


@pytest.mark.parametrize(
    ("fault", "stall_timeout_s", "expected_error"),
    [("stall_open_streams", 0.5, "stall_timeout_s"), ("drop_open_streams", 2.0, "failed after")],
    ids=["hung-stream", "dropped-connection"],
)
def test_url_stream_fault_reopens(camera, fault, stall_timeout_s, expected_error):
    """A hung stream is reopened after the stall timeout, a dropped connection as soon as the read fails."""
    loss = LossSettings(stall_timeout_s=stall_timeout_s, reopen_initial_s=0.1, reopen_max_s=0.5)
    source = make_source("url", "ipcam", url=camera.url, open_timeout_s=5.0, read_timeout_s=1.0, loss=loss)
    with source:
        before = take_frames(source, 10)
        getattr(camera, fault)()
        assert wait_until(lambda: source.stats().reopens >= 1, 15.0), f"the stream was not reopened after {fault}: {source.stats()}"
        after = take_frames(source, 10)
        stats = source.stats()

    assert expected_error in (stats.last_error or "")
    assert camera.connections >= 2
    assert after[0].seq > before[-1].seq
    sequence = [frame.seq for frame in before + after]
    assert sequence == sorted(set(sequence))
