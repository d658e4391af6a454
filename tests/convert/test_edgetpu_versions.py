"""Op versions edgetpu_compiler 16.0 cannot parse: the rule on hand-built graphs and on real converter output."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from edge_sdk.convert.edgetpu_versions import check_op_versions
from edge_sdk.convert.errors import TargetCompatibilityError
from edge_sdk.convert.graph import ModelGraph, OpInfo, TensorInfo, read_graph


def _graph(ops: list[tuple[str, int]], min_runtime_version: str | None) -> ModelGraph:
    tensor = TensorInfo(0, "t", (1, 8, 8, 4), (1, 8, 8, 4), "int8", False)
    infos = tuple(OpInfo(position, name, version, (tensor,), (tensor,)) for position, (name, version) in enumerate(ops))
    return ModelGraph(infos, (tensor,), (tensor,), 1, {}, min_runtime_version)


def test_versions_reported_rejection_names_op():
    check = check_op_versions(_graph([("QUANTIZE", 1), ("CONV_2D", 6), ("CONV_2D", 6)], None))

    assert len(check.errors) == 1
    assert check.errors[0].startswith("CONV_2D version 6")
    assert "google-coral/edgetpu/issues/631" in check.errors[0]
    assert check.message().count("Replace those layers") == 1
    assert check.message().count("issues/631") == 1


@pytest.mark.parametrize(
    ("op", "errors", "warnings"),
    [(("GELU", 2), 1, 0), (("ARG_MAX", 3), 1, 0), (("TILE", 3), 0, 1), (("MEAN", 3), 0, 1), (("MEAN", 2), 0, 0)],
)
def test_versions_table_names_op_type(op, errors, warnings):
    check = check_op_versions(_graph([op], None))

    assert len(check.errors) == errors
    assert len(check.warnings) == warnings
    assert all(f"{op[0]} version {op[1]}" in text for text in check.errors + check.warnings)


@pytest.mark.parametrize(
    ("runtime", "errors", "warnings"),
    [("1.14.0", 0, 0), ("2.3.0", 0, 0), ("2.4.0", 0, 1), ("2.8.0", 0, 1), ("2.9.0", 1, 0), ("2.13.0", 1, 0), (None, 0, 0)],
)
def test_versions_min_runtime_bands(runtime, errors, warnings):
    check = check_op_versions(_graph([("CONV_2D", 3)], runtime))

    assert len(check.errors) == errors
    assert len(check.warnings) == warnings
    assert check.min_runtime_version == runtime


def test_versions_unreadable_runtime_warns():
    check = check_op_versions(_graph([("CONV_2D", 3)], "2.x"))

    assert check.errors == ()
    assert "'2.x'" in check.warnings[0]


def test_versions_coral_zoo_model_passes(data_dir):
    model = data_dir / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
    check = check_op_versions(read_graph(model.read_bytes()))

    assert check.min_runtime_version == "1.5.0"
    assert check.errors == ()
    assert check.warnings == ()


def _grouped_conv_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(6, 3, groups=3, padding="same")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(x), name="grouped_conv")


def _gelu_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(6)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, activation="gelu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(x), name="gelu_conv")


@pytest.mark.parametrize(
    ("build", "expected"),
    [(_grouped_conv_model, "CONV_2D version 6"), (_gelu_model, "GELU version 2 (added in TFLite 2.9.0)")],
    ids=["grouped-conv", "gelu"],
)
def test_coral_convert_rejects_new_op_version(tmp_path, monkeypatch, build, expected):
    from edge_sdk.convert import ConvertOptions, convert

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}:/usr/bin:/bin")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(7).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8))
    output = tmp_path / "pkg"

    with pytest.raises(TargetCompatibilityError) as caught:
        convert(ConvertOptions(model=build(), output=output, target="coral", calibration=calibration, max_accuracy_drop=100.0))

    assert expected in str(caught.value)
    if build is _gelu_model:
        assert "CONV_2D" not in str(caught.value)
    assert "No package was written" in str(caught.value)
    assert "grouped_conv" in str(caught.value) or "gelu_conv" in str(caught.value)
    assert not (output / "manifest.json").exists()
    assert (tmp_path / "pkg.report.json").exists()


def test_coral_convert_defers_to_compiler(tmp_path, monkeypatch):
    """With edgetpu_compiler on PATH its run decides, and the version finding stays in the report."""
    from edge_sdk.convert import ConvertOptions, convert

    script = tmp_path / "bin" / "edgetpu_compiler"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'out=""; while [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done\n'
        'mkdir -p "$out"; cp "$1" "$out/model_edgetpu.tflite"\n'
        'printf "Edge TPU Compiler version 16.0.384591198\\n" > "$out/model_edgetpu.log"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(8).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8))

    report = convert(ConvertOptions(model=_grouped_conv_model(), output=tmp_path / "pkg", target="coral", calibration=calibration, max_accuracy_drop=100.0))

    assert report.compiler["compiled"] is True
    assert report.edgetpu["op_versions"]["min_runtime_version"] == "2.9.0"
    assert any("CONV_2D version 6" in warning for warning in report.warnings)
