"""Calibration and validation loaders read real images and video through the runtime's preprocessing."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edge_sdk.convert import ValidationSetError
from edge_sdk.convert.calibration import load_calibration
from edge_sdk.convert.images import evenly_spaced
from edge_sdk.convert.validation import load_validation
from edge_sdk.package.manifest import InputSpec
from edge_sdk.runtime.preprocess import normalize

SPEC = InputSpec(shape=(1, 32, 32, 3), dtype="float32", mean=(127.5,), std=(127.5,))


def test_evenly_spaced_covers_range():
    assert evenly_spaced(10, 3) == [0, 4, 9]
    assert evenly_spaced(3, 10) == [0, 1, 2]


def test_folder_calibration_matches_runtime_normalize(gtsrb_dir):
    calibration = load_calibration(gtsrb_dir / "test", SPEC, samples=20)
    first_image = sorted((gtsrb_dir / "test" / "00000").iterdir())[0]

    assert len(calibration) == 20
    assert calibration.kind == "images"
    assert calibration.samples.dtype == np.float32
    assert np.array_equal(calibration.samples[0], normalize(cv2.imread(str(first_image)), SPEC)[0])
    assert calibration.samples.min() >= -1.0
    assert calibration.samples.max() <= 1.0


def test_video_calibration_samples_frames_evenly(data_dir):
    video = data_dir / "video" / "solidWhiteRight.mp4"
    calibration = load_calibration(video, SPEC, samples=5)

    assert calibration.kind == "video"
    assert calibration.samples.shape == (5, 32, 32, 3)
    # Frames spread over the clip differ from each other.
    assert not np.array_equal(calibration.samples[0], calibration.samples[-1])


def test_npz_pixels_use_x_array(gtsrb_dir):
    calibration = load_calibration(gtsrb_dir / "train_32x32.npz", SPEC, samples=8)
    with np.load(gtsrb_dir / "train_32x32.npz") as data:
        first_rgb = data["x"][0]

    assert calibration.kind == "pixels"
    assert len(calibration) == 8
    expected = normalize(np.ascontiguousarray(first_rgb[..., ::-1]), SPEC)[0]
    assert np.array_equal(calibration.samples[0], expected)


def test_undecodable_image_is_named(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError) as caught:
        load_calibration(folder, SPEC)
    assert "broken.png" in str(caught.value)


def test_validation_folder_and_csv_agree(gtsrb_dir):
    from_folders = load_validation(gtsrb_dir / "test", SPEC, None, 43)
    from_csv = load_validation(gtsrb_dir / "test_labels.csv", SPEC, None, 43)

    assert len(from_folders) == 430
    assert len(from_csv) == 430
    assert sorted(np.bincount(from_folders.labels).tolist()) == [10] * 43
    by_path = dict(zip(from_csv.paths, from_csv.labels.tolist()))
    assert all(by_path[path] == label for path, label in zip(from_folders.paths, from_folders.labels.tolist()))


def test_validation_label_names_resolve(gtsrb_dir, tmp_path):
    for name, source in (("stop", "00014"), ("yield", "00013")):
        shutil.copytree(gtsrb_dir / "test" / source, tmp_path / name)
    labels = ["yield", "stop"]

    validation = load_validation(tmp_path, SPEC, labels, 2)

    assert validation.labels.tolist() == [1] * 10 + [0] * 10


def test_validation_unknown_label_rejected(gtsrb_dir, tmp_path):
    shutil.copytree(gtsrb_dir / "test" / "00001", tmp_path / "zebra")
    with pytest.raises(ValidationSetError) as caught:
        load_validation(tmp_path, SPEC, ["stop"], 1)
    assert "'zebra'" in str(caught.value)


def test_validation_class_id_out_of_range(gtsrb_dir):
    with pytest.raises(ValidationSetError) as caught:
        load_validation(gtsrb_dir / "test", SPEC, None, 10)
    assert "outside the model's 10 classes" in str(caught.value)


def test_validation_csv_missing_image(tmp_path):
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\nmissing.png,3\n")
    with pytest.raises(ValidationSetError) as caught:
        load_validation(csv_file, SPEC, None, 43)
    assert "missing.png" in str(caught.value)
