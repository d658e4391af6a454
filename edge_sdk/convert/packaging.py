"""Write the chosen candidate as a model package and prove it loads in the runtime."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_sdk.convert.errors import ModelCheckError
from edge_sdk.convert.quantize import io_dtype
from edge_sdk.convert.report import ConversionReport
from edge_sdk.convert.source import SourceModel
from edge_sdk.package.manifest import InputSpec, Manifest

if TYPE_CHECKING:
    from edge_sdk.convert.pipeline import ConvertOptions

logger = logging.getLogger(__name__)


def write_package_for(
    options: ConvertOptions,
    report: ConversionReport,
    source: SourceModel,
    spec: InputSpec,
    labels: list[str] | None,
    model_bytes: bytes,
    input_detail: dict[str, Any],
    mode: str,
    compiled: bool,
    report_path: Path,
) -> None:
    from edge_sdk.package.archive import write_package

    dtype = io_dtype(mode, options.target)
    scale = zero_point = None
    if dtype in ("uint8", "int8"):
        scale, zero_point = float(input_detail["quantization"][0]), int(input_detail["quantization"][1])
    manifest = Manifest(
        name=options.name or source.name,
        version=options.version,
        task=options.task,
        input=replace(spec, dtype=dtype, scale=scale, zero_point=zero_point),
        labels_file="labels.txt" if labels is not None else None,
        target=options.target,
        quantization=mode,
        edgetpu_compiled=compiled,
        extra={"conversion": _manifest_summary(report, mode)},
    )
    write_package(options.output, manifest, model_bytes, labels)
    if not compiled:
        _verify_package(Path(options.output))
    report.package = str(options.output)
    report.write(report_path)


def _verify_package(directory: Path) -> None:
    """Load the written package with the runtime's `Model`; delete it and raise when that fails."""
    from edge_sdk.package.errors import PackageError
    from edge_sdk.runtime import Model
    from edge_sdk.runtime.errors import RuntimeModelError

    try:
        Model.load(directory).close()
    except (RuntimeModelError, PackageError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise ModelCheckError(f"the written package {directory} does not load in the runtime ({exc}); it was removed") from exc


def _manifest_summary(report: ConversionReport, mode: str) -> dict[str, Any]:
    candidate = report.candidate(mode)
    summary: dict[str, Any] = {"source": report.model, "calibration": report.calibration, "evaluation_set": report.evaluation_set}
    if candidate is not None and candidate.evaluation is not None:
        evaluation = candidate.evaluation
        summary.update(
            float_top1=evaluation.float_top1,
            quantized_top1=evaluation.quantized_top1,
            top1_agreement=evaluation.top1_agreement,
            median_invoke_ms=candidate.median_invoke_ms,
        )
    return summary
