"""Convert the real traffic-sign model for every target and mode and run each package in the runtime."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_sdk.convert.edgetpu import FLOAT_DTYPES, QUANTIZED_DTYPES, analyze_edgetpu, float_ops
from edge_sdk.convert.graph import read_graph
from edge_sdk.package.manifest import Manifest
from edge_sdk.runtime import Model

pytestmark = pytest.mark.slow

# (target, mode, minimum top-1 agreement with the Keras model on the GTSRB test images)
CASES = [
    ("cpu", "fp32", 0.97),
    ("cpu", "fp16", 0.97),
    ("cpu", "dynamic", 0.95),
    ("cpu", "int8", 0.95),
    ("jetson", "fp16", 0.97),
    ("coral", "int8", 0.95),
]


@pytest.fixture(scope="module")
def keras_top1(keras_model, gtsrb_test_images):
    """Keras top-1 class and the true class of every GTSRB test image."""
    pixels = np.stack([cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path, _ in gtsrb_test_images])
    scores = keras_model.predict(pixels.astype(np.float32), batch_size=128, verbose=0)
    truth = np.asarray([class_id for _, class_id in gtsrb_test_images])
    return np.argmax(scores, axis=1), truth


def test_recipe_float_model_reaches_90_percent(traffic_model, keras_top1):
    predicted, truth = keras_top1
    top1 = float(np.mean(predicted == truth))
    assert top1 >= 0.90, f"float top-1 {top1:.3f} on the GTSRB test images"
    assert traffic_model.report["test_top1"] == pytest.approx(top1, abs=1e-6)


@pytest.mark.parametrize(("target", "mode", "min_agreement"), CASES, ids=[f"{t}-{m}" for t, m, _ in CASES])
def test_package_agrees_with_keras(convert_once, keras_top1, gtsrb_test_images, target, mode, min_agreement):
    converted = convert_once(target, mode)
    keras_predicted, truth = keras_top1

    with Model.load(converted.package) as model:
        assert model.manifest.target == target
        assert model.manifest.quantization == mode
        predicted = np.asarray([model.predict(cv2.imread(str(path))).classifications[0].class_id for path, _ in gtsrb_test_images])

    agreement = float(np.mean(predicted == keras_predicted))
    assert agreement >= min_agreement, f"{target}/{mode} agrees with Keras on {agreement:.3f} of the test images"
    float_top1 = float(np.mean(keras_predicted == truth))
    package_top1 = float(np.mean(predicted == truth))
    assert float_top1 - package_top1 <= 0.01, f"{target}/{mode} top-1 {package_top1:.3f} vs float {float_top1:.3f}"


@pytest.mark.parametrize(("target", "mode", "min_agreement"), CASES, ids=[f"{t}-{m}" for t, m, _ in CASES])
def test_report_matches_package(convert_once, target, mode, min_agreement):
    converted = convert_once(target, mode)
    report = converted.report
    candidate = report.candidate(mode)
    manifest = Manifest.read(converted.package / "manifest.json")

    assert report.succeeded
    assert report.chosen_mode == mode
    assert candidate.passed_gate
    assert candidate.evaluation.samples == 430
    assert candidate.evaluation.top1_agreement >= min_agreement
    assert candidate.median_invoke_ms > 0
    assert candidate.size_bytes == (converted.package / manifest.model_file).stat().st_size
    assert manifest.extra["conversion"]["top1_agreement"] == candidate.evaluation.top1_agreement
    report_file = converted.package.parent / f"{converted.package.name}.report.json"
    assert json.loads(report_file.read_text())["chosen_mode"] == mode


def test_coral_package_is_uint8_and_all_int8_ops(convert_once):
    converted = convert_once("coral", "int8")
    manifest = Manifest.read(converted.package / "manifest.json")
    graph = read_graph((converted.package / manifest.model_file).read_bytes())

    assert [t.dtype for t in graph.inputs] == ["uint8"]
    assert [t.dtype for t in graph.outputs] == ["uint8"]
    assert manifest.input.dtype == "uint8"
    assert manifest.input.scale is not None and manifest.input.zero_point is not None
    assert float_ops(graph) == ()
    for op in graph.ops:
        for tensor in op.inputs + op.outputs:
            if not tensor.is_constant:
                assert tensor.dtype in QUANTIZED_DTYPES, f"{op.name} tensor {tensor.name} is {tensor.dtype}"
    assert not any(dtype in FLOAT_DTYPES for dtype in graph.constant_dtypes)


def test_coral_without_compiler_records_not_compiled(convert_once):
    converted = convert_once("coral", "int8")
    manifest = Manifest.read(converted.package / "manifest.json")

    assert manifest.edgetpu_compiled is False
    assert converted.report.compiler["compiled"] is False
    assert "edgetpu_compiler -s -o" in converted.report.compiler["hint"]
    assert converted.report.edgetpu["cpu_ops"] == 0
    assert converted.report.edgetpu["cut_at"] is None


def test_coral_graph_maps_every_op_to_edgetpu(convert_once):
    converted = convert_once("coral", "int8")
    graph = read_graph((converted.package / "model.tflite").read_bytes())
    analysis = analyze_edgetpu(graph)

    assert analysis.edgetpu_op_count == len(graph.ops)
    assert {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(graph.op_counts())


def test_fp16_package_stores_float16_weights(convert_once):
    converted = convert_once("cpu", "fp16")
    fp32 = convert_once("cpu", "fp32")
    graph = read_graph((converted.package / "model.tflite").read_bytes())

    assert graph.constant_dtypes.get("float16", 0) >= 4
    assert [t.dtype for t in graph.inputs] == ["float32"]
    size_fp16 = (converted.package / "model.tflite").stat().st_size
    size_fp32 = (fp32.package / "model.tflite").stat().st_size
    assert size_fp16 < 0.6 * size_fp32


def test_int8_cpu_package_has_int8_io(convert_once):
    converted = convert_once("cpu", "int8")
    graph = read_graph((converted.package / "model.tflite").read_bytes())

    assert [t.dtype for t in graph.inputs] == ["int8"]
    assert [t.dtype for t in graph.outputs] == ["int8"]
    assert float_ops(graph) == ()


def test_auto_picks_fastest_candidate_inside_gate(convert_once):
    report = convert_once("cpu", "auto").report
    modes = [c.mode for c in report.candidates]
    passing = [c for c in report.candidates if c.passed_gate]

    assert modes == ["fp32", "fp16", "dynamic", "int8"]
    assert passing
    fastest = min(passing, key=lambda c: c.median_invoke_ms)
    assert report.chosen_mode == fastest.mode
    manifest = Manifest.read(report.package + "/manifest.json")
    assert manifest.quantization == fastest.mode


def test_cli_json_report_on_success(traffic_model, gtsrb_dir, tmp_path, capsys):
    from edge_sdk.cli import main as cli_main

    output = tmp_path / "pkg"
    code = cli_main([
        "convert", str(traffic_model.model_path), "-o", str(output), "--quantize", "fp32",
        "--validation", str(gtsrb_dir / "test"), "--json",
    ])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert report["succeeded"] is True
    assert report["chosen_mode"] == "fp32"
    assert report["candidates"][0]["evaluation"]["top1_agreement"] == 1.0
    assert Manifest.read(output / "manifest.json").name == "traffic_signs_small"
