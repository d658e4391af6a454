"""Find what `Model.load` needs: the model file, its manifest and its labels.

A path is a package directory, a package archive, or a bare `.tflite` file.
For a bare file the manifest is built from the interpreter's tensor details
and the options the caller gave.
"""

from __future__ import annotations

import logging
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_sdk.package.archive import open_package, sha256_file
from edge_sdk.package.errors import ManifestError
from edge_sdk.package.manifest import TASKS, InputSpec, Manifest
from edge_sdk.runtime.errors import ModelConfigError, ModelNotFoundError
from edge_sdk.runtime.interpreter import InterpreterHandle
from edge_sdk.runtime.labels import guess_label_offset, read_labels
from edge_sdk.runtime.tensors import dtype_name, find_detection_outputs, input_spec_from_details, output_tensors

logger = logging.getLogger(__name__)

_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


@dataclass(frozen=True, slots=True)
class BareModelOptions:
    """Caller-supplied facts about a bare `.tflite` file, which has no manifest."""

    labels: str | Path | None = None
    mean: Sequence[float] | float | None = None
    std: Sequence[float] | float | None = None
    task: str | None = None
    color_order: str = "RGB"
    resize: str = "stretch"
    label_offset: int | None = None
    score_threshold: float | None = None


def is_package(path: Path) -> bool:
    """Tell whether a path is a package directory or archive rather than a bare model file."""
    if path.is_dir():
        return True
    if path.suffix.lower() == ".tflite":
        return False
    if path.name.lower().endswith(_ARCHIVE_SUFFIXES):
        return True  # a damaged archive then gets the archive error, not "not a TFLite model"
    try:
        return tarfile.is_tarfile(path) or zipfile.is_zipfile(path)
    except OSError:
        return False


def open_package_model(path: Path, extract_dir: Path) -> tuple[Path, Manifest, list[str] | None]:
    """Open a package; return the model file path, the manifest and the labels from the package."""
    directory, manifest = open_package(path, extract_dir if path.is_file() else None)
    labels = read_labels(directory / manifest.labels_file) if manifest.labels_file else None
    return directory / manifest.model_file, manifest, labels


def check_input_against_manifest(handle: InterpreterHandle, manifest: Manifest, model_path: Path) -> InputSpec:
    """Return the manifest's input spec with the input tensor's own quantization, after checking shape and dtype."""
    detail = handle.interpreter.get_input_details()[0]
    shape = tuple(int(d) for d in detail["shape"])
    dtype = dtype_name(detail["dtype"])
    spec = manifest.input
    if shape[1:] != tuple(spec.shape[1:]) or dtype != spec.dtype:
        raise ModelConfigError(
            f"{model_path} has input {list(shape)} {dtype} but its manifest records {list(spec.shape)} {spec.dtype}: "
            "the manifest belongs to another model; rebuild the package"
        )
    if dtype not in ("uint8", "int8"):
        return spec
    scale, zero_point = detail["quantization"]
    if spec.scale is not None and (abs(spec.scale - scale) > 1e-9 * max(1.0, scale) or spec.zero_point != zero_point):
        logger.warning(
            "%s: manifest input quantization (scale %s, zero point %s) differs from the tensor's (%s, %s); using the tensor's",
            model_path, spec.scale, spec.zero_point, scale, zero_point,
        )
    return replace(spec, scale=float(scale), zero_point=int(zero_point))


def build_bare_manifest(handle: InterpreterHandle, model_path: Path, options: BareModelOptions) -> tuple[Manifest, list[str] | None]:
    """Describe a bare `.tflite` file as a manifest, from its tensors and the caller's options."""
    interpreter = handle.interpreter
    spec = input_spec_from_details(
        interpreter.get_input_details()[0],
        mean=options.mean,
        std=options.std,
        color_order=options.color_order,
        resize=options.resize,
        source=str(model_path),
    )
    outputs = output_tensors(interpreter)
    found = find_detection_outputs(outputs, _signature_output_names(interpreter))
    detection, roles_named = found if found is not None else (None, False)
    task = options.task or _guess_task(outputs, detection is not None)
    if task not in TASKS:
        raise ModelConfigError(f"task is {task!r}: expected one of {', '.join(TASKS)}")
    if task == "detection" and detection is None:
        shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in outputs)
        raise ModelConfigError(
            f"{model_path} has outputs {shapes}: a detection model needs the four TFLite_Detection_PostProcess outputs "
            "(boxes [1, N, 4], classes [1, N], scores [1, N], count [1])"
        )

    labels = read_labels(options.labels) if options.labels is not None else None
    num_classes = outputs[0].shape[-1] if task == "classification" else None
    label_offset = options.label_offset if options.label_offset is not None else guess_label_offset(labels or [], num_classes, task)
    manifest = Manifest(
        name=model_path.stem,
        version="unversioned",
        task=task,
        input=spec,
        model_file=model_path.name,
        model_sha256=sha256_file(model_path),
        labels_file=Path(options.labels).name if options.labels is not None else None,
        label_offset=label_offset,
        target="coral" if handle.model_info.is_edgetpu_compiled else "cpu",
        quantization=spec.dtype if spec.is_quantized else "fp32",
        detection=detection if task == "detection" else None,
        score_threshold=options.score_threshold if options.score_threshold is not None else 0.5,
        edgetpu_compiled=handle.model_info.is_edgetpu_compiled,
        created_by="edge-sdk runtime (bare model)",
        extra={"detection_roles_guessed": True} if task == "detection" and not roles_named else {},
    )
    try:
        manifest.validate()
    except ManifestError as exc:
        raise ModelConfigError(f"options for the bare model {model_path} are invalid: {exc}") from exc
    return manifest, labels


def require_file(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(f"{path} not found: give a package directory, a package archive or a .tflite file")


def _guess_task(outputs: Sequence[Any], has_detection_outputs: bool) -> str:
    if has_detection_outputs:
        return "detection"
    if len(outputs) == 1 and len(outputs[0].shape) in (3, 4) and outputs[0].shape[1] > 1 and outputs[0].shape[2] > 1:
        return "segmentation"
    return "classification"


def _signature_output_names(interpreter: Any) -> dict[int, str]:
    """Map output tensor index to signature output name (`detection_scores`...), empty when there is none."""
    full = getattr(interpreter, "_get_full_signature_list", None)
    if full is None:
        return {}
    names: dict[int, str] = {}
    for signature in full().values():
        for name, index in signature.get("outputs", {}).items():
            names[int(index)] = name
    return names
