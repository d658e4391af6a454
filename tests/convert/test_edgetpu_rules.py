"""Edge TPU op rules, graph cut, and the edgetpu_compiler log parser."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from edge_sdk.convert import compiler
from edge_sdk.convert.compiler import CompilerError, compile_for_edgetpu, parse_compiler_log
from edge_sdk.convert.edgetpu import STATUS_AFTER_CUT, analyze_edgetpu, float_ops
from edge_sdk.convert.graph import ModelGraph, OpInfo, TensorInfo, read_graph

# A log written for this test after the format edgetpu_compiler documents and
# prints: a version line, the input and output files, then one row per
# (operator, status) with the columns Operator, Count and Status.
COMPILER_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: model.tflite
Input size: 361.05KiB
Output model: out/model_edgetpu.tflite
Output size: 412.30KiB
On-chip memory used for caching model parameters: 344.25KiB
On-chip memory remaining for caching model parameters: 7.41MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 14
Operation log: out/model_edgetpu.log

Operator                       Count      Status

QUANTIZE                       1          Mapped to Edge TPU
CONV_2D                        3          Mapped to Edge TPU
MAX_POOL_2D                    3          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
SIN                            1          Operation not supported
SOFTMAX                        1          More than one subgraph is not supported
DEQUANTIZE                     2          Operation is working on an unsupported data type
"""


def test_compiler_log_parser_reads_rows():
    log = parse_compiler_log(COMPILER_LOG)

    assert log.version == "16.0.384591198"
    assert log.edgetpu_subgraphs == 1
    assert len(log.rows) == 8
    assert log.rows[1].op == "CONV_2D"
    assert log.rows[1].count == 3
    assert log.rows[1].on_edgetpu
    assert log.rows[5].status == "Operation not supported"
    assert log.edgetpu_op_count == 10
    assert log.cpu_op_count == 4


def test_compiler_log_parser_handles_empty_text():
    log = parse_compiler_log("")
    assert log.version is None
    assert log.rows == ()
    assert log.edgetpu_op_count == 0


def _tensor(name, dtype, shape=(1, 8, 8, 4), constant=False, signature=None):
    return TensorInfo(0, name, shape, signature or shape, dtype, constant)


def _graph(*ops):
    return ModelGraph(tuple(ops), (ops[0].inputs[0],), (ops[-1].outputs[0],), 1, {})


def test_analysis_cuts_graph_at_first_unsupported_op():
    ops = [
        OpInfo(0, "QUANTIZE", 1, (_tensor("in", "uint8"),), (_tensor("q", "int8"),)),
        OpInfo(1, "CONV_2D", 3, (_tensor("q", "int8"), _tensor("w", "int8", constant=True)), (_tensor("c", "int8"),)),
        OpInfo(2, "DEQUANTIZE", 1, (_tensor("c", "int8"),), (_tensor("f", "float32"),)),
        OpInfo(3, "SIN", 1, (_tensor("f", "float32"),), (_tensor("s", "float32"),)),
        OpInfo(4, "QUANTIZE", 1, (_tensor("s", "float32"),), (_tensor("r", "int8"),)),
        OpInfo(5, "SOFTMAX", 1, (_tensor("r", "int8"),), (_tensor("out", "int8"),)),
    ]
    analysis = analyze_edgetpu(_graph(*ops))

    assert analysis.cut_at == 2
    assert analysis.edgetpu_op_count == 2
    assert [v.op for v in analysis.cpu_ops] == ["DEQUANTIZE", "SIN", "QUANTIZE", "SOFTMAX"]
    assert "not an Edge TPU op" in analysis.cpu_ops[0].reason
    assert analysis.cpu_ops[-1].reason == STATUS_AFTER_CUT
    assert [op.name for op in float_ops(_graph(*ops))] == ["DEQUANTIZE", "SIN", "QUANTIZE"]


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        (_tensor("dyn", "int8", signature=(-1, 8, 8, 4)), "dynamic shape"),
        (_tensor("batch", "int8", shape=(2, 8, 8, 4)), "only the 3 innermost"),
        (_tensor("rank5", "int8", shape=(1, 2, 8, 8, 4)), "at most 4"),
        (_tensor("float", "float32"), "only int8/uint8"),
    ],
    ids=["dynamic", "batch", "rank5", "float"],
)
def test_analysis_rejects_tensor_rules(tensor, reason):
    op = OpInfo(0, "ADD", 1, (tensor,), (_tensor("out", "int8"),))
    analysis = analyze_edgetpu(_graph(op))
    assert analysis.cut_at == 0
    assert reason in analysis.cpu_ops[0].reason


def test_analysis_rejects_fused_activation_on_pooling():
    op = OpInfo(0, "MAX_POOL_2D", 2, (_tensor("in", "int8"),), (_tensor("out", "int8"),), "RELU")
    analysis = analyze_edgetpu(_graph(op))
    assert "fused RELU" in analysis.cpu_ops[0].reason


def test_analysis_on_real_int8_model_with_sine_layer(tmp_path):
    import keras
    from keras import layers

    from edge_sdk.convert.quantize import convert_candidate
    from edge_sdk.convert.source import load_source_model

    class SineActivation(layers.Layer):
        def call(self, inputs):
            return keras.ops.sin(inputs)

    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = SineActivation()(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    calibration = np.random.default_rng(2).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)

    with load_source_model(model) as source:
        candidate = convert_candidate(source, "int8", "coral", calibration)
    analysis = analyze_edgetpu(read_graph(candidate.model_bytes))

    names = [v.op for v in analysis.verdicts]
    assert "SIN" in names
    assert analysis.verdicts[analysis.cut_at].op == "DEQUANTIZE"
    assert analysis.verdicts[names.index("CONV_2D")].on_edgetpu


def _fake_compiler(tmp_path, body):
    script = tmp_path / "edgetpu_compiler"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_compile_runs_compiler_and_parses_log(tmp_path):
    # A stand-in for edgetpu_compiler (not installable here) that copies the
    # model and writes the log in the compiler's format.
    log_text = COMPILER_LOG.replace("'", "")
    body = (
        'out=""; while [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done\n'
        'mkdir -p "$out"; cp "$1" "$out/model_edgetpu.tflite"\n'
        f"cat > \"$out/model_edgetpu.log\" <<'EOF'\n{log_text}EOF\n"
        'echo "Edge TPU Compiler version 16.0.384591198"\n'
    )
    result = compile_for_edgetpu(b"TFL3-model-bytes", _fake_compiler(tmp_path, body))

    assert result.model_bytes == b"TFL3-model-bytes"
    assert result.log.version == "16.0.384591198"
    assert len(result.log.rows) == 8


def test_compile_failure_raises_compiler_error(tmp_path):
    script = _fake_compiler(tmp_path, 'echo "ERROR: Didn\'t find op for builtin opcode" >&2\nexit 1\n')
    with pytest.raises(CompilerError) as caught:
        compile_for_edgetpu(b"model", script)
    assert "exited with status 1" in str(caught.value)
    assert "builtin opcode" in str(caught.value)


def test_find_compiler_searches_path(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert compiler.find_compiler() is None

    script = _fake_compiler(tmp_path, "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compiler.find_compiler() == script


def test_coral_conversion_packages_compiled_model(tmp_path, monkeypatch):
    import keras
    from keras import layers

    from edge_sdk.convert import ConvertOptions, convert
    from edge_sdk.package.manifest import Manifest

    # The stand-in compiler copies the int8 model and writes a log in the compiler's format.
    body = (
        'out=""; while [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift;; esac; shift; done\n'
        'mkdir -p "$out"; cp "$1" "$out/model_edgetpu.tflite"\n'
        f"cat > \"$out/model_edgetpu.log\" <<'EOF'\n{COMPILER_LOG}EOF\n"
    )
    _fake_compiler(tmp_path, body)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x), name="tiny_coral")
    calibration = tmp_path / "calibration.npy"
    np.save(calibration, np.random.default_rng(4).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8))
    output = tmp_path / "pkg"

    report = convert(ConvertOptions(model=model, output=output, target="coral", calibration=calibration, max_accuracy_drop=100.0))

    manifest = Manifest.read(output / "manifest.json")
    assert manifest.edgetpu_compiled is True
    assert report.compiler["compiled"] is True
    assert report.compiler["version"] == "16.0.384591198"
    assert report.compiler["cpu_ops"] == 4
    assert len(report.compiler["rows"]) == 8
