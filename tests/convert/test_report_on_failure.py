"""The conversion report is written for every failure after the source model loads, and carries the log's warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_sdk.convert import ConvertOptions, convert
from edge_sdk.convert.errors import AccuracyGateError, CalibrationError, ConvertError, TargetCompatibilityError
from tests.convert.test_convert_errors import _sin_model


def _report(tmp_path):
    return json.loads((tmp_path / "pkg.report.json").read_text(encoding="utf-8"))


def test_report_written_for_target_error(tmp_path):
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8))

    with pytest.raises(TargetCompatibilityError):
        convert(ConvertOptions(model=_sin_model(), output=tmp_path / "pkg", target="coral", calibration=calibration))

    report = _report(tmp_path)
    assert "SIN" in report["error"]
    assert not (tmp_path / "pkg").exists()


def test_report_written_for_calibration_error(tmp_path):
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.zeros((8, 28, 28, 3), dtype=np.float32))

    with pytest.raises(CalibrationError):
        convert(ConvertOptions(model=_sin_model(), output=tmp_path / "pkg", target="cpu", quantize="fp32", calibration=calibration))

    assert "(28, 28, 3)" in _report(tmp_path)["error"]


def test_report_keeps_float64_cast_warning(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)), name="flat")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(1).uniform(0, 255, (8, 32, 32, 3)))

    report = convert(ConvertOptions(model=model, output=tmp_path / "pkg", target="cpu", quantize="fp32", calibration=calibration))

    assert any("float64" in warning for warning in report.warnings)
    assert any("float64" in warning for warning in _report(tmp_path)["warnings"])


def test_report_has_edgetpu_findings_after_gate_failure(traffic_model, gtsrb_dir, tmp_path):
    black = tmp_path / "black.npy"
    np.save(black, np.zeros((32, 32, 32, 3), dtype=np.uint8))

    with pytest.raises(AccuracyGateError):
        convert(
            ConvertOptions(
                model=traffic_model.model_path, output=tmp_path / "pkg", target="coral", calibration=black,
                validation=gtsrb_dir / "test", labels=traffic_model.labels_path,
            )
        )

    findings = _report(tmp_path)["edgetpu"]
    assert findings["edgetpu_ops"] > 0
    assert findings["op_versions"]["min_runtime_version"] is not None
    assert findings["op_versions"]["errors"] == []


def test_negative_accuracy_drop_rejected(tmp_path):
    with pytest.raises(ConvertError, match="max_accuracy_drop"):
        convert(ConvertOptions(model=_sin_model(), output=tmp_path / "pkg", target="cpu", quantize="fp32", max_accuracy_drop=-1.0))
