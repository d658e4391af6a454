"""Keras 3 Sequential, Functional and subclassed models and SavedModels convert, with the batch pinned to 1."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge_sdk.convert import ConvertOptions, convert
from edge_sdk.convert.graph import read_graph
from edge_sdk.package.manifest import Manifest
from edge_sdk.runtime import Model


def _sequential():
    import keras
    from keras import layers

    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ],
        name="sequential_net",
    )


def _functional():
    import keras
    from keras import layers

    keras.utils.set_random_seed(8)
    inputs = keras.Input((32, 32, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    left = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    right = layers.Conv2D(8, 1, padding="same", activation="relu")(x)
    x = layers.Add()([left, right])
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(5, activation="softmax")(x), name="functional_net")


def _subclassed():
    import keras
    from keras import layers

    keras.utils.set_random_seed(9)

    class TinyNet(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed_net")
            self.rescale = layers.Rescaling(1 / 255)
            self.conv = layers.Conv2D(8, 3, activation="relu")
            self.pool = layers.GlobalAveragePooling2D()
            self.head = layers.Dense(5, activation="softmax")

        def call(self, inputs):
            return self.head(self.pool(self.conv(self.rescale(inputs))))

    model = TinyNet()
    model(np.zeros((1, 32, 32, 3), np.float32))
    return model


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory, gtsrb_dir):
    """64 real GTSRB training images as uint8 pixels."""
    with np.load(gtsrb_dir / "train_32x32.npz") as data:
        pixels = data["x"][::125][:64]
    path = tmp_path_factory.mktemp("calibration") / "gtsrb64.npy"
    np.save(path, pixels)
    return path


@pytest.mark.parametrize("build", [_sequential, _functional, _subclassed], ids=["sequential", "functional", "subclassed"])
def test_keras_model_kinds_convert(build, calibration_file, tmp_path, caplog):
    model = build()
    output = tmp_path / "pkg"
    with caplog.at_level(logging.INFO, logger="edge_sdk.convert.source"):
        report = convert(ConvertOptions(model=model, output=output, quantize="fp32", calibration=calibration_file))

    candidate = report.candidate("fp32")
    assert report.succeeded
    assert candidate.evaluation.top1_agreement == 1.0
    assert max(candidate.evaluation.mean_abs_diff) < 1e-4
    assert report.batch_pinned is True
    assert any("pinning it to 1" in r.getMessage() for r in caplog.records)
    # The report's warning is what the CLI prints, so the log line stays below WARNING.
    assert not any("pinning it to 1" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert sum("dynamic batch dimension" in warning for warning in report.warnings) == 1
    graph = read_graph((output / "model.tflite").read_bytes())
    assert graph.inputs[0].shape_signature == (1, 32, 32, 3)
    with Model.load(output) as loaded:
        assert loaded.manifest.name == model.name


def test_subclassed_model_converts_to_int8(calibration_file, tmp_path):
    output = tmp_path / "pkg"
    report = convert(
        ConvertOptions(model=_subclassed(), output=output, quantize="int8", calibration=calibration_file, max_accuracy_drop=100.0)
    )
    manifest = Manifest.read(output / "manifest.json")
    assert report.candidate("int8").input_dtype == "int8"
    assert manifest.input.dtype == "int8"
    assert manifest.input.zero_point is not None


def test_saved_model_with_dynamic_batch_is_pinned(calibration_file, tmp_path):
    import tensorflow as tf

    model = _functional()
    saved = tmp_path / "saved"
    model.export(saved, format="tf_saved_model", verbose=False)
    loaded_signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    assert loaded_signature.structured_input_signature[1]
    output = tmp_path / "pkg"

    report = convert(ConvertOptions(model=saved, output=output, quantize="fp32", calibration=calibration_file))

    assert report.batch_pinned is True
    assert report.candidate("fp32").evaluation.top1_agreement == 1.0
    graph = read_graph((output / "model.tflite").read_bytes())
    assert graph.inputs[0].shape_signature == (1, 32, 32, 3)


def test_h5_model_file_converts(calibration_file, tmp_path):
    model = _sequential()
    h5 = tmp_path / "legacy.h5"
    model.save(h5)
    output = tmp_path / "pkg"

    report = convert(ConvertOptions(model=h5, output=output, quantize="fp16", calibration=calibration_file))

    assert report.succeeded
    assert Manifest.read(output / "manifest.json").name == "legacy"
    assert report.candidate("fp16").weight_dtypes.get("float16", 0) > 0
