"""Bad inputs to the converter: clear errors naming the model or sample, and no package left behind."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main as cli_main
from edge_sdk.convert import (
    AccuracyGateError,
    CalibrationError,
    ConvertError,
    ConvertOptions,
    SourceModelError,
    SourceModelNotFoundError,
    TargetCompatibilityError,
    convert,
)
from edge_sdk.convert.calibration import check_samples, load_calibration
from edge_sdk.convert.source import check_keras_signature
from edge_sdk.package.manifest import InputSpec

SPEC = InputSpec(shape=(1, 32, 32, 3), dtype="float32")


def test_missing_model_path_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "model.keras"
    with pytest.raises(SourceModelNotFoundError) as caught:
        convert(ConvertOptions(model=missing, output=tmp_path / "pkg", quantize="fp32"))
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert not (tmp_path / "pkg").exists()


def test_text_file_named_keras_is_rejected(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("this is not a model\n")
    with pytest.raises(SourceModelError) as caught:
        convert(ConvertOptions(model=fake, output=tmp_path / "pkg", quantize="fp32"))
    message = str(caught.value)
    assert str(fake) in message
    assert "is not a Keras model file" in message
    assert "zip archive" in message
    assert "starts with the text 'this is not a model'" in message
    assert "model.save(" in message
    assert "File not found" not in message
    assert not (tmp_path / "pkg").exists()


HDF5_START = b"\x89HDF\r\n\x1a\n"
ZIP_START = b"PK\x03\x04"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("weights.h5", b"not hdf5 either\n", ["an HDF5 file", "starts with the text 'not hdf5 either'"]),
        ("model.keras", HDF5_START + bytes(32), ["zip archive", "89 48 44 46", "rename it to model.h5"]),
        ("model.h5", ZIP_START + bytes(32), ["an HDF5 file", "50 4b 03 04", "rename it to model.keras"]),
        ("model.keras", b"", ["is empty"]),
        ("model.hdf5", b"\x00\xff\x10\x80" * 4, ["an HDF5 file", "00 ff 10 80"]),
    ],
    ids=["text-h5", "hdf5-named-keras", "zip-named-h5", "empty", "binary-hdf5"],
)
def test_keras_signature_mismatch_explained(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceModelError) as caught:
        check_keras_signature(path)
    message = str(caught.value)
    assert f"model {path} is not a Keras model file" in message
    for part in expected:
        assert part in message


def test_keras_signature_accepts_hdf5_user_block(tmp_path):
    # HDF5 may start with a user block, which moves the signature to byte 512 or a later power of two.
    path = tmp_path / "model.h5"
    path.write_bytes(bytes(512) + HDF5_START + bytes(64))
    check_keras_signature(path)


def test_tflite_file_is_not_a_source_model(tmp_path):
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    with pytest.raises(SourceModelError) as caught:
        convert(ConvertOptions(model=tflite, output=tmp_path / "pkg", quantize="fp32"))
    assert "'.tflite'" in str(caught.value)


def test_directory_without_saved_model_rejected(tmp_path):
    with pytest.raises(SourceModelError) as caught:
        convert(ConvertOptions(model=tmp_path, output=tmp_path / "pkg", quantize="fp32"))
    assert "saved_model.pb" in str(caught.value)


def _placeholder_model(tmp_path):
    """A file that exists, for checks that run before the model is read."""
    path = tmp_path / "m.keras"
    path.write_text("placeholder\n")
    return path


def test_coral_rejects_float_modes(tmp_path):
    with pytest.raises(ConvertError) as caught:
        convert(ConvertOptions(model=_placeholder_model(tmp_path), output=tmp_path / "pkg", target="coral", quantize="fp16"))
    assert "only full int8" in str(caught.value)


def test_detection_task_rejected(tmp_path):
    with pytest.raises(ConvertError) as caught:
        convert(ConvertOptions(model=tmp_path / "m.keras", output=tmp_path / "pkg", quantize="fp32", task="detection"))
    assert "task detection is not supported" in str(caught.value)


def test_int8_without_calibration_rejected(tmp_path):
    with pytest.raises(ConvertError) as caught:
        convert(ConvertOptions(model=_placeholder_model(tmp_path), output=tmp_path / "pkg", target="cpu", quantize="int8"))
    assert "--calibration" in str(caught.value)


def test_missing_model_reported_before_calibration(tmp_path):
    missing = tmp_path / "nowhere.keras"
    with pytest.raises(SourceModelNotFoundError) as caught:
        convert(ConvertOptions(model=missing, output=tmp_path / "pkg", target="coral"))
    assert str(missing) in str(caught.value)


def test_convert_without_tensorflow_says_install_extra(tmp_path, monkeypatch):
    # A None entry in sys.modules makes importlib report the module as not installed.
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ConvertError) as caught:
        convert(ConvertOptions(model=_placeholder_model(tmp_path), output=tmp_path / "pkg", quantize="fp32"))
    assert "pip install 'edge-sdk[convert]'" in str(caught.value)
    assert not (tmp_path / "pkg").exists()


def _sin_model():
    import keras
    from keras import layers

    class SineActivation(layers.Layer):
        def call(self, inputs):
            return keras.ops.sin(inputs)

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = SineActivation(name="sine")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(4, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="sine_model")


def test_coral_rejects_op_without_int8_kernel(tmp_path):
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(TargetCompatibilityError) as caught:
        convert(ConvertOptions(model=_sin_model(), output=tmp_path / "pkg", target="coral", calibration=calibration))
    message = str(caught.value)
    assert "sine_model" in message
    assert "SIN" in message
    assert "int8" in message
    assert not (tmp_path / "pkg").exists()


def test_labels_count_mismatch_rejected(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)), name="four_classes")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(SourceModelError) as caught:
        convert(ConvertOptions(model=model, output=tmp_path / "pkg", quantize="fp32", calibration=calibration, labels=labels))
    assert "3 labels" in str(caught.value)
    assert "4 output classes" in str(caught.value)
    assert not (tmp_path / "pkg").exists()


def test_calibration_wrong_shape_names_shapes(tmp_path):
    array = tmp_path / "calibration.npy"
    np.save(array, np.zeros((8, 28, 28, 3), dtype=np.float32))
    with pytest.raises(CalibrationError) as caught:
        load_calibration(array, SPEC)
    message = str(caught.value)
    assert "(28, 28, 3)" in message
    assert "(32, 32, 3)" in message
    assert str(array) in message


@pytest.mark.parametrize(("channels", "phrase"), [(1, "have 1 channel but"), (4, "have 4 channels but")])
def test_calibration_wrong_channels_rejected(channels, phrase):
    with pytest.raises(CalibrationError) as caught:
        check_samples(np.zeros((4, 32, 32, channels), dtype=np.uint8), SPEC, "frames.npy")
    assert phrase in str(caught.value)
    assert "the model input has 3" in str(caught.value)
    assert "frames.npy" in str(caught.value)


def test_calibration_wrong_rank_names_one_channel():
    gray = InputSpec(shape=(1, 32, 32, 1), dtype="float32", color_order="GRAY")
    with pytest.raises(CalibrationError) as caught:
        check_samples(np.zeros((4, 32), dtype=np.uint8), gray, "frames.npy")
    assert "with 1 channel" in str(caught.value)
    assert "1 channels" not in str(caught.value)


def test_calibration_nan_sample_is_named():
    samples = np.zeros((5, 32, 32, 3), dtype=np.float32)
    samples[3, 1, 1, 0] = np.nan
    with pytest.raises(CalibrationError) as caught:
        check_samples(samples, SPEC, "frames.npy")
    assert "sample 3" in str(caught.value)


def test_calibration_float64_cast_with_warning(caplog):
    samples = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3))
    with caplog.at_level(logging.WARNING, logger="edge_sdk.convert.calibration"):
        calibration = check_samples(samples, SPEC, "frames.npy")
    assert calibration.samples.dtype == np.float32
    assert np.allclose(calibration.samples, samples.astype(np.float32))
    assert any("float64" in record.getMessage() for record in caplog.records)


def test_calibration_object_array_rejected(tmp_path):
    array = tmp_path / "objects.npy"
    np.save(array, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(CalibrationError) as caught:
        load_calibration(array, SPEC)
    assert str(array) in str(caught.value)


def test_calibration_string_array_rejected():
    with pytest.raises(CalibrationError) as caught:
        check_samples(np.array(["a", "b"]), SPEC, "names.npy")
    assert "not a numeric image array" in str(caught.value)


def test_calibration_missing_path(tmp_path):
    with pytest.raises(CalibrationError) as caught:
        load_calibration(tmp_path / "none", SPEC)
    assert "not found" in str(caught.value)


@pytest.mark.slow
def test_gate_rejects_all_black_calibration(traffic_model, gtsrb_dir, tmp_path):
    black = tmp_path / "black.npy"
    np.save(black, np.zeros((32, 32, 32, 3), dtype=np.uint8))
    output = tmp_path / "pkg"
    report_path = tmp_path / "report.json"

    with pytest.raises(AccuracyGateError) as caught:
        convert(
            ConvertOptions(
                model=traffic_model.model_path, output=output, target="cpu", quantize="int8",
                calibration=black, validation=gtsrb_dir / "test", labels=traffic_model.labels_path, report_path=report_path,
            )
        )
    assert "accuracy gate" in str(caught.value)
    assert "calibration" in str(caught.value)
    assert not output.exists()
    report = json.loads(report_path.read_text())
    assert report["succeeded"] is False
    assert report["candidates"][0]["evaluation"]["accuracy_drop_points"] > 1.0


@pytest.mark.slow
def test_cli_gate_failure_exits_nonzero(traffic_model, gtsrb_dir, tmp_path, capsys):
    black = tmp_path / "black.npy"
    np.save(black, np.zeros((16, 32, 32, 3), dtype=np.uint8))
    output = tmp_path / "pkg"
    code = cli_main([
        "convert", str(traffic_model.model_path), "-o", str(output), "--quantize", "int8",
        "--calibration", str(black), "--validation", str(gtsrb_dir / "test"), "--json",
    ])
    captured = capsys.readouterr()
    assert code == 1
    assert not output.exists()
    assert json.loads(captured.out)["succeeded"] is False
    assert "accuracy gate" in captured.err
    assert Path(f"{output}.report.json").is_file()
