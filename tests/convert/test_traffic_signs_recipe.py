"""The traffic-sign recipe: model variants, dataset readers and the track-aware split."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from models.traffic_signs import NUM_CLASSES, DatasetError, build_model, load_dataset, split_by_group


def test_build_model_variants():
    small = build_model("small")
    large = build_model("large")

    assert small.input_shape == (None, 32, 32, 3)
    assert small.output_shape == (None, NUM_CLASSES)
    assert large.output_shape == (None, NUM_CLASSES)
    assert large.count_params() > 2 * small.count_params()
    assert [layer.name for layer in small.layers if layer.name.startswith("conv")] == ["conv1", "conv2", "conv3"]
    assert [layer.name for layer in small.layers if layer.name.startswith("pool")] == ["pool1", "pool2", "pool3"]


def test_build_model_rejects_unknown_variant():
    with pytest.raises(ValueError) as caught:
        build_model("medium")
    assert "'medium'" in str(caught.value)


def test_load_npz_reads_gtsrb_arrays(gtsrb_dir):
    dataset = load_dataset(gtsrb_dir / "train_32x32.npz")

    assert dataset.images.shape == (8024, 32, 32, 3)
    assert dataset.images.dtype == np.uint8
    assert set(dataset.labels.tolist()) == set(range(NUM_CLASSES))
    assert dataset.class_names[14] == "Stop"
    assert len(dataset.class_names) == NUM_CLASSES


def test_load_class_folders_uses_folder_ids(gtsrb_dir):
    dataset = load_dataset(gtsrb_dir / "test")

    assert len(dataset.labels) == 430
    assert np.bincount(dataset.labels).tolist() == [10] * NUM_CLASSES
    first = sorted((gtsrb_dir / "test" / "00000").iterdir())[0]
    expected = cv2.cvtColor(cv2.imread(str(first)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(dataset.images[0], expected)


def test_split_holds_out_whole_tracks(gtsrb_dir):
    dataset = load_dataset(gtsrb_dir / "train_32x32.npz")
    train_index, validation_index = split_by_group(dataset, 0.1, seed=5)
    again = split_by_group(dataset, 0.1, seed=5)

    assert len(train_index) + len(validation_index) == len(dataset.labels)
    assert not set(dataset.groups[train_index]) & set(dataset.groups[validation_index])
    assert np.array_equal(again[1], validation_index)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 32, 32, 3), np.uint8)}, "lacks ['x', 'y']"),
        ({"x": np.zeros((2, 32, 32), np.uint8), "y": np.zeros(2)}, "expected (N, H, W, 3) uint8 RGB"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8), "y": np.zeros(3)}, "3 labels"),
    ],
    ids=["missing-keys", "no-channels", "length-mismatch"],
)
def test_load_npz_rejects_bad_arrays(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_load_dataset_missing_path(tmp_path):
    with pytest.raises(DatasetError) as caught:
        load_dataset(tmp_path / "none.npz")
    assert "not found" in str(caught.value)


def test_trained_model_report_records_run(traffic_model):
    report = json.loads((traffic_model.folder / "training_report.json").read_text())

    assert report["variant"] == "small"
    assert report["test_samples"] == 430
    assert report["test_top1"] >= 0.90
    assert report["preprocessing"]["mean"] == [0.0, 0.0, 0.0]
    labels = traffic_model.labels_path.read_text().splitlines()
    assert len(labels) == NUM_CLASSES
    assert labels[14] == "Stop"
