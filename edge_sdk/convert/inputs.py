"""The inputs every candidate is judged on: the float input spec, labels, evaluation frames and source outputs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.convert.calibration import CalibrationSet
from edge_sdk.convert.errors import CalibrationError, ConvertError, SourceModelError
from edge_sdk.convert.source import SourceModel
from edge_sdk.convert.validation import ValidationSet, load_validation
from edge_sdk.package.manifest import InputSpec

if TYPE_CHECKING:
    from edge_sdk.convert.pipeline import ConvertOptions
    from edge_sdk.convert.report import ConversionReport

logger = logging.getLogger(__name__)

# Without a labelled set, agreement is measured on at most this many calibration frames.
MAX_AGREEMENT_FRAMES = 200


def float_input_spec(source: SourceModel, options: ConvertOptions) -> InputSpec:
    height, width, channels = source.input_shape
    spec = InputSpec(
        shape=(1, height, width, channels),
        dtype="float32",
        color_order=options.color_order if channels == 3 else "GRAY",
        resize=options.resize,
        mean=tuple(float(m) for m in options.mean),
        std=tuple(float(s) for s in options.std),
    )
    try:
        spec.validate()
    except ValueError as exc:
        raise ConvertError(f"the preprocessing options are invalid for model {source.name}: {exc}") from exc
    return spec


def read_labels(labels_path: Path | None, model: Any) -> list[str] | None:
    """Read the labels file, or `labels.txt` beside a model file when none is given."""
    if labels_path is None and isinstance(model, (str, Path)):
        beside = Path(model).parent / "labels.txt" if Path(model).is_file() else Path(model) / "labels.txt"
        labels_path = beside if beside.is_file() else None
    if labels_path is None:
        return None
    path = Path(labels_path)
    if not path.is_file():
        raise ConvertError(f"labels file {path} not found: pass --labels with one class name per line")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluation_inputs(
    source: SourceModel,
    options: ConvertOptions,
    spec: InputSpec,
    labels: list[str] | None,
    calibration: CalibrationSet | None,
    report: ConversionReport,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the inputs (and labels, when known) every candidate is evaluated on."""
    num_classes = count_classes(source, labels)
    if options.validation is not None:
        validation: ValidationSet = load_validation(options.validation, spec, labels, num_classes, progress=options.progress)
        report.evaluation_set, report.evaluation_kind = validation.source, "validation"
        return validation.inputs, validation.labels
    if calibration is None:
        raise ConvertError("no frames to evaluate on: pass --validation (labelled images) or --calibration (real frames)")
    if float(np.ptp(calibration.samples)) == 0.0:
        raise CalibrationError(
            f"calibration set {calibration.source} is one constant value and there is no --validation set to judge "
            "the quantized model with: use real, varied frames or pass --validation"
        )
    report.evaluation_set, report.evaluation_kind = calibration.source, "calibration"
    report.warnings.append("no --validation set: the gate uses top-1 disagreement with the float model on calibration frames")
    return calibration.samples[:MAX_AGREEMENT_FRAMES], None


def count_classes(source: SourceModel, labels: list[str] | None) -> int:
    """Return the size of the first output, checking that the labels file has one label per class."""
    num_classes = int(np.prod(source.predict(np.zeros((1, *source.input_shape), np.float32))[0].shape[1:]))
    if labels is not None and len(labels) != num_classes:
        raise SourceModelError(
            f"the labels file has {len(labels)} labels but model {source.name} has {num_classes} output classes: "
            "pass the matching --labels file"
        )
    return num_classes


def predict_in_batches(source: SourceModel, inputs: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    batches = [source.predict(inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size)]
    return [np.concatenate([batch[index] for batch in batches]) for index in range(len(batches[0]))]
