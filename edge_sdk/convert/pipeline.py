"""`convert()`: source model in, checked and measured candidates, one model package out.

The steps are:
1. Load the source model, and read the calibration and validation sets
   through the runtime's preprocessing.
2. Convert each candidate mode and check its graph.
3. Load it in the runtime, invoke it on a real sample and compare with the source.
4. Measure accuracy and median invoke time, and apply the accuracy gate.
5. Pick the mode (`auto`: the fastest candidate inside the gate).
6. For coral, analyze Edge TPU placement and run `edgetpu_compiler` when installed.
7. Write the package.
A candidate that fails a check or the gate is never written as a package.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.convert import compiler as edgetpu_compiler
from edge_sdk.convert.calibration import DEFAULT_SAMPLES, CalibrationSet, load_calibration
from edge_sdk.convert.checks import check_graph
from edge_sdk.convert.edgetpu import analyze_edgetpu
from edge_sdk.convert.edgetpu_versions import VersionCheck, check_op_versions
from edge_sdk.convert.errors import AccuracyGateError, ConvertError, ModelCheckError, TargetCompatibilityError
from edge_sdk.convert.evaluate import TfliteRunner, compare, run_all
from edge_sdk.convert.graph import read_graph
from edge_sdk.convert.inputs import evaluation_inputs, float_input_spec, predict_in_batches, read_labels
from edge_sdk.convert.packaging import write_package_for
from edge_sdk.convert.quantize import MODES, TARGET_DEFAULT_MODE, convert_candidate
from edge_sdk.convert.report import CandidateResult, ConversionReport
from edge_sdk.convert.source import SourceModel, check_source_path, load_source_model, require_tensorflow
from edge_sdk.package.manifest import TARGETS, TASKS

logger = logging.getLogger(__name__)

DEFAULT_MAX_ACCURACY_DROP = 1.0


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """Options of one conversion: source, target, data sets and the accuracy gate.

    `quantize` None takes the target's default (cpu: auto, jetson: fp16,
    coral: int8). `mean`, `std`, `color_order` and `resize` describe the
    preprocessing the model was trained with. They are recorded in the
    manifest and used for calibration.
    """

    model: Any
    output: Path
    target: str = "cpu"
    quantize: str | None = None
    calibration: Path | None = None
    samples: int = DEFAULT_SAMPLES
    validation: Path | None = None
    labels: Path | None = None
    name: str | None = None
    version: str = "1"
    task: str = "classification"
    color_order: str = "RGB"
    resize: str = "stretch"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    report_path: Path | None = None
    num_threads: int | None = None
    run_compiler: bool = True
    progress: bool = False


def candidate_modes(target: str, quantize: str | None, has_calibration: bool) -> list[str]:
    """Return the modes to convert for `target` when the user asked for `quantize`."""
    if target not in TARGETS:
        raise ConvertError(f"target {target!r} is unknown: expected one of {', '.join(TARGETS)}")
    mode = quantize or TARGET_DEFAULT_MODE[target]
    if mode != "auto" and mode not in MODES:
        raise ConvertError(f"quantization {mode!r} is unknown: expected auto or one of {', '.join(MODES)}")
    if target == "coral" and mode not in ("int8", "auto"):
        raise ConvertError(f"--quantize {mode} cannot run on coral: the Edge TPU runs only full int8 models; use --quantize int8")
    if mode == "auto":
        if target == "coral":
            return ["int8"]
        return list(MODES) if has_calibration else [m for m in MODES if m != "int8"]
    return [mode]


def convert(options: ConvertOptions) -> ConversionReport:
    """Convert, check, measure and package a model; see the module docstring for the steps.

    Returns the report of a written package. Raises AccuracyGateError (with
    `.report`) when no candidate passed, after writing the report file, and a
    ConvertError subclass for bad inputs.
    """
    if options.task not in TASKS:
        raise ConvertError(f"task {options.task!r} is unknown: expected one of {', '.join(TASKS)}")
    if not options.max_accuracy_drop >= 0.0:  # also rejects NaN
        raise ConvertError(f"max_accuracy_drop (--max-accuracy-drop) {options.max_accuracy_drop} is invalid: use a number of percentage points >= 0")
    if options.task != "classification":
        # NOTE: the gate compares top-1 classes, and the manifest gets no detection
        # output mapping, so detection and segmentation models are not converted yet.
        raise ConvertError(
            f"task {options.task} is not supported by `edge-sdk convert` yet: it checks and gates classifiers only; "
            "convert detection or segmentation models with the TFLite converter and load the bare .tflite"
        )
    require_tensorflow()
    if isinstance(options.model, (str, Path)):
        check_source_path(Path(options.model))
    modes = candidate_modes(options.target, options.quantize, options.calibration is not None)
    if "int8" in modes and options.calibration is None:
        raise ConvertError(f"--quantize int8 for {options.target} needs --calibration: a folder of real frames, a video or a .npy array")

    with load_source_model(options.model) as source:
        report = ConversionReport(
            model=str(options.model) if isinstance(options.model, (str, Path)) else source.name,
            target=options.target,
            requested_mode=options.quantize or TARGET_DEFAULT_MODE[options.target],
            max_accuracy_drop=options.max_accuracy_drop,
            batch_pinned=source.batch_was_dynamic,
        )
        if report.requested_mode == "auto" and "int8" not in modes:
            report.warnings.append("int8 was not tried because no --calibration set was given")
        if source.batch_was_dynamic:
            report.warnings.append(f"the source model has a dynamic batch dimension; it was pinned to 1 for {options.target}")
        with _WarningsInto(report):
            try:
                return _convert_loaded(source, options, modes, report)
            except ConvertError as exc:
                # The gate and the Edge TPU check write the report themselves, with their own error text.
                if report.error is None:
                    report.error = str(exc)
                    logger.info("report written to %s", report.write(_report_path(options)))
                raise


class _WarningsInto(logging.Handler):
    """Copy the converter's log warnings (a cast calibration array, say) into the report while it is built."""

    def __init__(self, report: ConversionReport) -> None:
        super().__init__(level=logging.WARNING)
        self.report = report
        self._logger = logging.getLogger("edge_sdk.convert")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.report.logged_warnings.add(message)
        if message not in self.report.warnings:
            self.report.warnings.append(message)

    def __enter__(self) -> _WarningsInto:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)


def _convert_loaded(source: SourceModel, options: ConvertOptions, modes: list[str], report: ConversionReport) -> ConversionReport:
    spec = float_input_spec(source, options)
    labels = read_labels(options.labels, options.model)
    calibration = None
    if options.calibration is not None:
        calibration = load_calibration(options.calibration, spec, options.samples, progress=options.progress)
        report.calibration = {"source": calibration.source, "kind": calibration.kind, "samples": len(calibration)}
    inputs, targets = evaluation_inputs(source, options, spec, labels, calibration, report)
    source_outputs = predict_in_batches(source, inputs)
    timing_frames = calibration.samples if calibration is not None else inputs

    with tempfile.TemporaryDirectory(prefix="edge-sdk-convert-") as temp:
        built: dict[str, tuple[bytes, dict[str, Any]]] = {}
        for mode in modes:
            result, model_bytes, input_detail = _build_candidate(
                source, mode, options, calibration, inputs, targets, source_outputs, timing_frames, Path(temp)
            )
            report.candidates.append(result)
            if model_bytes is not None:
                built[mode] = (model_bytes, input_detail)

    chosen = _choose(report, modes)
    if chosen is None:
        if options.target == "coral" and "int8" in built:
            # The Edge TPU findings matter even when the gate failed: they may be why it failed,
            # and an op version the compiler cannot parse would stop the next attempt anyway.
            versions = _record_edgetpu_findings(built["int8"][0], report)
            if versions.errors:
                report.warnings.append(versions.message())
        return _fail_gate(report, options, modes)
    report.chosen_mode = chosen
    model_bytes, input_detail = built[chosen]
    compiled = False
    if options.target == "coral":
        model_bytes, compiled = _coral_steps(model_bytes, options, report, source.name)
    write_package_for(options, report, source, spec, labels, model_bytes, input_detail, chosen, compiled, _report_path(options))
    return report


def _build_candidate(
    source: SourceModel,
    mode: str,
    options: ConvertOptions,
    calibration: CalibrationSet | None,
    inputs: np.ndarray,
    targets: np.ndarray | None,
    source_outputs: list[np.ndarray],
    timing_frames: np.ndarray,
    temp: Path,
) -> tuple[CandidateResult, bytes | None, dict[str, Any]]:
    """Convert, check and measure one mode. Errors of a single mode end up in its result when several are tried."""
    single = len(candidate_modes(options.target, options.quantize, calibration is not None)) == 1
    try:
        candidate = convert_candidate(source, mode, options.target, None if calibration is None else calibration.samples)
        graph = read_graph(candidate.model_bytes)
        check_graph(graph, mode, options.target, source.name)
        path = temp / f"{mode}.tflite"
        path.write_bytes(candidate.model_bytes)
        runner = TfliteRunner(path, num_threads=options.num_threads)
        sample_check = _sample_check(runner, source, inputs[0])
        outputs = run_all(runner, inputs, progress=options.progress, desc=f"evaluate {mode}")
        evaluation = compare(source_outputs, outputs, targets)
        invoke_ms = runner.time_invoke(timing_frames)
    except ConvertError as exc:
        if single:
            raise
        logger.warning("candidate %s failed: %s", mode, exc)
        return CandidateResult(mode=mode, error=str(exc)), None, {}

    passed = evaluation.accuracy_drop_points <= options.max_accuracy_drop and not evaluation.constant_outputs
    result = CandidateResult(
        mode=mode,
        strategy=candidate.strategy,
        size_bytes=len(candidate.model_bytes),
        input_dtype=graph.inputs[0].dtype,
        output_dtype=graph.outputs[0].dtype,
        median_invoke_ms=round(invoke_ms, 4),
        evaluation=evaluation,
        sample_check=sample_check,
        weight_dtypes=dict(graph.constant_dtypes),
        op_counts=graph.op_counts(),
        passed_gate=passed,
    )
    logger.info("candidate %s: drop %.2f points, %.3f ms, %d bytes", mode, evaluation.accuracy_drop_points, invoke_ms, len(candidate.model_bytes))
    return result, candidate.model_bytes, dict(runner.input_details)


def _sample_check(runner: TfliteRunner, source: SourceModel, sample: np.ndarray) -> dict[str, Any]:
    """Invoke once on a real sample and compare with the source model's output on it."""
    converted = runner.run(sample)
    reference = source.predict(sample[np.newaxis])
    if not all(np.isfinite(output).all() for output in converted):
        raise ModelCheckError(f"{source.name} produced NaN or infinite outputs on a real sample after conversion; no package was written")
    top1_source = int(np.argmax(reference[0]))
    top1_converted = int(np.argmax(converted[0]))
    return {
        "backend": runner.backend,
        "top1_source": top1_source,
        "top1_converted": top1_converted,
        "max_abs_diff": float(np.max(np.abs(reference[0].reshape(converted[0].shape) - converted[0]))),
    }


def _choose(report: ConversionReport, modes: list[str]) -> str | None:
    passing = [c for c in report.candidates if c.passed_gate and c.median_invoke_ms is not None]
    if not passing:
        return None
    if len(modes) == 1:
        return passing[0].mode
    return min(passing, key=lambda c: c.median_invoke_ms).mode


def _fail_gate(report: ConversionReport, options: ConvertOptions, modes: list[str]) -> ConversionReport:
    details = []
    for candidate in report.candidates:
        if candidate.evaluation is not None:
            reason = f"{candidate.mode} lost {candidate.evaluation.accuracy_drop_points:.2f} points"
            if candidate.evaluation.constant_outputs:
                reason += f" and output(s) {list(candidate.evaluation.constant_outputs)} collapsed to a constant"
            details.append(reason)
        else:
            details.append(f"{candidate.mode} failed: {candidate.error}")
    report.error = (
        f"no candidate of {', '.join(modes)} stayed within the {options.max_accuracy_drop} point accuracy gate "
        f"({'; '.join(details)}). Check that the calibration set holds real, varied frames preprocessed like the "
        "training data, or raise --max-accuracy-drop"
    )
    path = _report_path(options)
    report.write(path)
    raise AccuracyGateError(f"{report.error}; report written to {path}", report)


def _coral_steps(model_bytes: bytes, options: ConvertOptions, report: ConversionReport, model_name: str) -> tuple[bytes, bool]:
    """Check the int8 model against the Edge TPU rules and compile it when edgetpu_compiler is on PATH.

    Without a compiler, op versions it is known not to parse stop the
    conversion. With one, its own run decides, and those findings stay in the
    report as warnings.
    """
    versions = _record_edgetpu_findings(model_bytes, report)
    compiler_path = edgetpu_compiler.find_compiler() if options.run_compiler else None
    if versions.errors and compiler_path is None:
        report.error = versions.message()
        path = _report_path(options)
        report.write(path)
        raise TargetCompatibilityError(f"{model_name} cannot be compiled for the Edge TPU: {report.error}. No package was written; report written to {path}")
    if versions.errors:
        report.warnings.append(versions.message())
    if compiler_path is None:
        report.compiler = {"compiled": False, "hint": edgetpu_compiler.INSTALL_HINT}
        return model_bytes, False
    result = edgetpu_compiler.compile_for_edgetpu(model_bytes, compiler_path)
    report.compiler = {"compiled": True, **result.log.to_dict()}
    return result.model_bytes, True


def _record_edgetpu_findings(model_bytes: bytes, report: ConversionReport) -> VersionCheck:
    """Put the Edge TPU op placement and op-version findings into the report; return the version check."""
    graph = read_graph(model_bytes)
    analysis = analyze_edgetpu(graph)
    versions = check_op_versions(graph)
    report.edgetpu = {**analysis.to_dict(), "op_versions": versions.to_dict()}
    if analysis.cpu_ops:
        report.warnings.append(
            f"{len(analysis.cpu_ops)} op(s) would run on the CPU, starting at op {analysis.cut_at} "
            f"({analysis.cpu_ops[0].op}: {analysis.cpu_ops[0].reason})"
        )
    report.warnings.extend(versions.warnings)
    return versions


def _report_path(options: ConvertOptions) -> Path:
    if options.report_path is not None:
        return Path(options.report_path)
    output = Path(options.output)
    return output.parent / f"{output.name}.report.json"


