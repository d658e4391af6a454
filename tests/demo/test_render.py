"""The procedural road clip: decodable by OpenCV, labelled per frame, every sign class shown."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_sdk.demo.render import (
    LABELS,
    NO_SIGN,
    SIGN_CLASSES,
    DriveSchedule,
    SignPlacement,
    drive_frames,
    frame_label,
    label_radius_px,
    render_clip,
    render_scene,
)


def test_clip_decodes_with_every_frame(tmp_path):
    info = render_clip(tmp_path / "clip.mp4", seconds=4.0, fps=10.0)
    capture = cv2.VideoCapture(str(info.path))
    decoded = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (info.height, info.width, 3)
        decoded += 1
    capture.release()
    assert decoded == info.frame_count
    assert info.frame_count == 40


def test_drive_shows_every_sign_class():
    seconds = len(SIGN_CLASSES) * DriveSchedule().sign_spacing_m / DriveSchedule().speed_mps + 4.0
    labels = {label for _, label in drive_frames(320, 240, 10.0, seconds)}
    assert labels == set(LABELS)


def test_consecutive_frames_differ():
    frames = [frame for frame, _ in drive_frames(160, 120, 10.0, 0.3)]
    assert len(frames) == 3
    assert not np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[1], frames[2])


def test_frame_label_needs_minimum_size():
    near = SignPlacement("stop", 8.0, 3.0)
    far = SignPlacement("stop", 300.0, 3.0)
    assert frame_label((near,), 320, 240) == "stop"
    assert frame_label((far,), 320, 240) == NO_SIGN
    assert frame_label((), 320, 240) == NO_SIGN
    assert label_radius_px(320) > 1.0


def test_frame_label_takes_largest_sign():
    signs = (SignPlacement("yield", 30.0, 3.0), SignPlacement("no_entry", 9.0, -6.0))
    assert frame_label(signs, 320, 240) == "no_entry"


@pytest.mark.parametrize("label", SIGN_CLASSES)
def test_sign_changes_pixels(label):
    empty = render_scene(320, 240, 10.0, (), rng=np.random.default_rng(1))
    with_sign = render_scene(320, 240, 10.0, (SignPlacement(label, 10.0, 3.0),), rng=np.random.default_rng(1))
    changed = np.any(empty != with_sign, axis=2).sum()
    assert changed > 100


def test_render_clip_rejects_bad_size(tmp_path):
    with pytest.raises(ValueError, match="invalid"):
        render_clip(tmp_path / "clip.mp4", seconds=1.0, width=10, height=10)
