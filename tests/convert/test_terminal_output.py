"""What `edge-sdk convert` prints: full-width tables, each message once, and TensorFlow's progress output kept off the terminal."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from edge_sdk.convert.evaluate import Evaluation
from edge_sdk.convert.report import NON_TERMINAL_WIDTH, CandidateResult, ConversionReport, make_console, render_report
from edge_sdk.convert.source import capture_native_stderr, load_source_model, quiet_tensorflow_logging
from tests.conftest import REPO_ROOT

INT8_ERROR = (
    "model signs cannot be fully quantized to int8 for coral: SIN has no int8 kernel "
    "(from_keras_model: error: 'tfl.sin' op operand #0 must be tensor of 32-bit float values). "
    "Replace that layer with one the int8 op set has"
)


def _report() -> ConversionReport:
    report = ConversionReport(model="models_out/signs/model.keras", target="cpu", requested_mode="auto", max_accuracy_drop=1.0)
    report.candidates = [
        CandidateResult("fp32", size_bytes=1_234_567, median_invoke_ms=12.3456, evaluation=Evaluation(430, 0.94, 0.9395, 0.99767, (0.00123,), ()), passed_gate=True),
        CandidateResult("dynamic", size_bytes=334_567, median_invoke_ms=2.3456, evaluation=Evaluation(430, 0.94, 0.5, 0.5, (0.2, 0.01), (1,))),
        CandidateResult("int8", error=INT8_ERROR),
    ]
    report.chosen_mode = "fp32"
    return report


def _render(width: int) -> str:
    stream = io.StringIO()
    render_report(_report(), Console(file=stream, width=width))
    return stream.getvalue()


def _words(text: str) -> str:
    return " ".join(text.split())


NUMBERS = ("1205.6", "12.346", "94.00%", "93.95%", "99.77%", "0.05", "0.0012", "326.7", "2.346", "50.00%", "44.00", "0.2000, 0.0100")


@pytest.mark.parametrize("width", [60, 80, 200])
def test_candidate_table_keeps_every_number(width):
    output = _render(width)
    assert "…" not in output
    for number in NUMBERS:
        assert number in output


@pytest.mark.parametrize("width", [80, 200])
def test_candidate_error_printed_whole_below_table(width):
    output = _render(width)
    assert f"int8: error: {INT8_ERROR}" in _words(output)
    assert "dynamic: output(s) [1] collapsed to a constant" in _words(output)
    table_rows = [line for line in output.splitlines() if line.startswith("│")]
    assert not any("SIN" in row for row in table_rows)


def test_console_is_wide_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(io.StringIO()).width == NON_TERMINAL_WIDTH


def test_console_keeps_columns_set_by_user(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console(io.StringIO()).width == 100


def test_render_to_pipe_is_not_cut(monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    render_report(_report())
    output = capsys.readouterr().out
    assert "…" not in output
    assert "agree-" in output
    assert f"int8: error: {INT8_ERROR}" in _words(output)


def test_render_without_error_line():
    report = _report()
    report.error = "no candidate of fp32, dynamic, int8 stayed within the 1.0 point accuracy gate"
    with_error, without_error = io.StringIO(), io.StringIO()
    render_report(report, Console(file=with_error, width=160))
    render_report(report, Console(file=without_error, width=160), show_error=False)
    assert with_error.getvalue().count("no package written") == 1
    assert "no package written" not in without_error.getvalue()


def test_render_keeps_brackets_in_messages():
    report = _report()
    report.warnings = ["labels [red] and [bold]x[/bold] are text"]
    stream = io.StringIO()
    render_report(report, Console(file=stream, width=160))
    assert "labels [red] and [bold]x[/bold] are text" in stream.getvalue()


def test_native_stderr_noise_goes_to_debug(capfd, caplog):
    with caplog.at_level(logging.DEBUG, logger="edge_sdk.convert.source"), capture_native_stderr("test model"):
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n")
        os.write(2, b"I0000 00:00:1796425216.967859   29923 reader.cc:83] Reading SavedModel from: /tmp/x\n")
        os.write(2, b"E0000 00:00:1796425216.967859   29923 converter.cc:1] a real converter error\n")
    err = capfd.readouterr().err
    assert "a real converter error" in err
    assert "fully_quantize" not in err
    assert "Reading SavedModel" not in err
    debug = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert any("fully_quantize: 0" in message for message in debug)
    assert any("Reading SavedModel" in message for message in debug)


def _tiny_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Conv2D(4, 3, activation="relu"), layers.Flatten(), layers.Dense(3, activation="softmax")],
        name="tiny_net",
    )


def test_keras_export_printout_goes_to_debug(capfd, caplog):
    with load_source_model(_tiny_model()) as source, caplog.at_level(logging.DEBUG, logger="edge_sdk.convert.source"):
        strategy, converter = next(source.iter_converters())
        model_bytes = converter.convert()
    captured = capfd.readouterr()
    assert strategy == "from_keras_model"
    assert len(model_bytes) > 0
    assert "Saved artifact" not in captured.out + captured.err
    assert "TensorSpec" not in captured.out + captured.err
    assert any("Saved artifact" in record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG)


def test_quiet_tensorflow_keeps_user_log_level(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tensorflow_logging(0)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet_tensorflow_logging(0)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_quiet_tensorflow_drops_retracing_warning(caplog):
    quiet_tensorflow_logging(0)
    tf_logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        tf_logger.warning("5 out of the last 5 calls to <function f> triggered tf.function retracing.")
        tf_logger.warning("a real TensorFlow warning")
    messages = [record.getMessage() for record in caplog.records]
    assert "a real TensorFlow warning" in messages
    assert not any("retracing" in message for message in messages)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "COLUMNS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", "import sys; from edge_sdk.cli import main; sys.exit(main(sys.argv[1:]))", "convert", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, gtsrb_dir):
    """A small untrained model file and 32 real GTSRB images as its calibration set."""
    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "tiny.keras"
    _tiny_model().save(model_path)
    with np.load(gtsrb_dir / "train_32x32.npz") as data:
        np.save(folder / "calibration.npy", data["x"][::250][:32])
    return model_path, folder / "calibration.npy"


def test_cli_convert_output_is_quiet(cli_inputs, tmp_path):
    model_path, calibration = cli_inputs
    result = _run_cli(str(model_path), "-o", str(tmp_path / "pkg"), "--quantize", "int8", "--calibration", str(calibration), "--max-accuracy-drop", "100")
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    noise_lines = (
        "Saved artifact", "TensorSpec", "fully_quantize", "Reading SavedModel", "Statistics for quantized inputs",
        "oneDNN custom operations", "absl::InitializeLog", "XNNPACK delegate",
    )
    for noise in noise_lines:
        assert noise not in terminal
    assert terminal.count("dynamic batch dimension") == 1
    assert "wrote package" in result.stdout
    assert "…" not in result.stdout


def test_cli_gate_failure_prints_error_once(traffic_model, gtsrb_dir, tmp_path):
    # All-black calibration collapses the int8 model, so the gate fails against the real validation set.
    black = tmp_path / "black.npy"
    np.save(black, np.zeros((16, 32, 32, 3), dtype=np.uint8))
    result = _run_cli(
        str(traffic_model.model_path), "-o", str(tmp_path / "pkg"), "--quantize", "int8", "--calibration", str(black),
        "--validation", str(gtsrb_dir / "test"), "--labels", str(traffic_model.labels_path),
    )
    terminal = result.stdout + result.stderr
    assert result.returncode == 1
    assert terminal.count("no package written") == 1
    assert terminal.count("point accuracy gate") == 1
    assert "report written to" in result.stderr
    assert not (tmp_path / "pkg").exists()


def test_cli_logged_warning_printed_once(cli_inputs, tmp_path):
    model_path, calibration = cli_inputs
    float64 = tmp_path / "float64.npy"
    np.save(float64, np.load(calibration).astype(np.float64))
    result = _run_cli(str(model_path), "-o", str(tmp_path / "pkg"), "--quantize", "fp32", "--calibration", str(float64), "--max-accuracy-drop", "100")
    terminal = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert terminal.count("is float64: casting to float32") == 1


def test_cli_calibration_error_names_report(cli_inputs, tmp_path):
    model_path, _ = cli_inputs
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.random.default_rng(5).uniform(0, 255, (4, 28, 28, 3)).astype(np.float32))
    result = _run_cli(str(model_path), "-o", str(tmp_path / "pkg"), "--quantize", "int8", "--calibration", str(wrong))
    assert result.returncode == 1
    assert "(28, 28, 3)" in result.stderr
    assert f"report written to {tmp_path / 'pkg.report.json'}" in result.stderr
    assert result.stderr.count("error:") == 1
