"""Put a model compiled by `edgetpu_compiler` into a coral package that was written without the compiler.

`edge-sdk convert --target coral` on a machine without `edgetpu_compiler`
writes the int8 CPU model and `edgetpu_compiled: false`. After the model is
compiled elsewhere, `attach_compiled_model()` checks the compiled file against
the package, writes it beside the CPU model as `<model>_edgetpu.tflite`, and
points the manifest at it with its sha256. The CPU model stays in the folder,
and the manifest records its name and sha256 under `extra.edgetpu`.

Every check runs before anything is written. The files are then written to
temporary names and renamed, and renaming `manifest.json` switches the
package, so a failed check or write leaves the package as it was. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_sdk import __version__
from edge_sdk.convert.compiler import CompilerLog, parse_compiler_log
from edge_sdk.convert.errors import ConvertError
from edge_sdk.convert.report import REPORT_SCHEMA
from edge_sdk.package.archive import verify_package_dir
from edge_sdk.package.manifest import MANIFEST_FILENAME, Manifest
from edge_sdk.runtime.errors import InvalidModelError
from edge_sdk.runtime.io_tensors import IoTensor, read_model_io
from edge_sdk.runtime.model_file import EDGETPU_CUSTOM_OP, parse_model_bytes

logger = logging.getLogger(__name__)

COMPILED_SUFFIX = "_edgetpu"


class AttachError(ConvertError, ValueError):
    """The compiled model, the package, the compiler log or the report cannot be used; nothing was written."""


class CompiledModelNotFoundError(AttachError, FileNotFoundError):
    """The compiled model, the compiler log or the report named by the caller does not exist."""


@dataclass(frozen=True, slots=True)
class AttachResult:
    """The outcome of `attach_compiled_model()`: the package, its new model file, the CPU model file kept beside it and the updated report."""

    package: Path
    model_file: str
    model_sha256: str
    cpu_model_file: str
    report: Path | None
    log: CompilerLog | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "model_file": self.model_file,
            "model_sha256": self.model_sha256,
            "cpu_model_file": self.cpu_model_file,
            "report": None if self.report is None else str(self.report),
            "compiler": None if self.log is None else self.log.to_dict(),
        }


def default_report_path(package: Path) -> Path:
    """Return where `edge-sdk convert` writes the report of `package` when `--report` is not given."""
    package = package.resolve()
    return package.parent / f"{package.name}.report.json"


def attach_compiled_model(
    package: str | Path,
    compiled: str | Path,
    *,
    log: str | Path | None = None,
    report: str | Path | None = None,
) -> AttachResult:
    """Check `compiled` against the coral package `package` and make it the package's model.

    `log` is the compiler's operation log (`<model>_edgetpu.log`). Its rows go
    into the conversion report and its summary into the manifest. `report` is
    the conversion report to update, by default `PACKAGE.report.json` beside
    the package. The report must exist when `log` or `report` is given, and is
    skipped otherwise when it is missing. Raises `AttachError` (or
    `CompiledModelNotFoundError`) for a file that does not fit, and
    `PackageError` for a package that fails its own checks.
    """
    package = Path(package)
    compiled = Path(compiled)
    manifest = _read_coral_package(package)
    cpu_model = package / manifest.model_file
    compiled_bytes = _read_compiled_model(compiled, cpu_model)
    _check_same_io(compiled, compiled_bytes, cpu_model, manifest)

    compiler_log = _read_compiler_log(Path(log)) if log is not None else None
    report_path = Path(report) if report is not None else default_report_path(package)
    report_data = _read_report(report_path, required=log is not None or report is not None)
    if report_data is None:
        logger.info("no conversion report at %s, so only the package is updated", report_path)
        report_path = None

    new_manifest = _compiled_manifest(manifest, compiled_bytes, compiler_log)
    if report_data is not None:
        report_data["compiler"] = _report_compiler_entry(compiled, log, compiler_log)
    _write_files(package, new_manifest, compiled_bytes, report_path, report_data)
    verify_package_dir(package)
    logger.info("attached %s to %s as %s (sha256 %s)", compiled, package, new_manifest.model_file, new_manifest.model_sha256)
    return AttachResult(package, new_manifest.model_file, new_manifest.model_sha256, manifest.model_file, report_path, compiler_log)


def _read_coral_package(package: Path) -> Manifest:
    if not package.is_dir():
        raise AttachError(
            f"{package} is not a package directory: give the folder written by `edge-sdk convert --target coral` "
            "(unpack an archive first, attach, then pack it again)"
        )
    manifest = verify_package_dir(package)
    if manifest.target != "coral":
        raise AttachError(
            f"{package} is a {manifest.target} package, not a coral package: only a package converted with "
            "`--target coral` can take an Edge TPU model"
        )
    cpu_model = package / manifest.model_file
    if manifest.edgetpu_compiled or parse_model_bytes(cpu_model.read_bytes(), cpu_model).is_edgetpu_compiled:
        raise AttachError(
            f"{package} already contains a model compiled for the Edge TPU ({manifest.model_file}): "
            "convert the source model again to attach a new compilation"
        )
    return manifest


def _read_compiled_model(compiled: Path, cpu_model: Path) -> bytes:
    compile_step = (
        f"run `edgetpu_compiler -s -o OUTDIR {cpu_model}` and attach OUTDIR/{cpu_model.stem}{COMPILED_SUFFIX}.tflite"
    )
    if not compiled.is_file():
        raise CompiledModelNotFoundError(f"compiled model {compiled} not found or not a file: {compile_step}")
    data = compiled.read_bytes()
    try:
        info = parse_model_bytes(data, compiled)
    except InvalidModelError as exc:
        raise AttachError(f"{compiled} is not a TFLite model compiled for the Edge TPU ({exc}): {compile_step}") from exc
    if not info.is_edgetpu_compiled:
        raise AttachError(
            f"{compiled} contains no {EDGETPU_CUSTOM_OP} op, so it is not compiled for the Edge TPU "
            f"(custom ops: {', '.join(info.custom_ops) or 'none'}): {compile_step}"
        )
    return data


def _check_same_io(compiled: Path, compiled_bytes: bytes, cpu_model: Path, manifest: Manifest) -> None:
    """Raise AttachError unless the compiled model has the CPU model's input and output tensors and the manifest's input."""
    compiled_io = read_model_io(compiled_bytes, compiled)
    cpu_io = read_model_io(cpu_model.read_bytes(), cpu_model)
    advice = f"it was compiled from another model; run edgetpu_compiler on {cpu_model} and attach that output"
    for kind, compiled_tensors, cpu_tensors in (("input", compiled_io.inputs, cpu_io.inputs), ("output", compiled_io.outputs, cpu_io.outputs)):
        if len(compiled_tensors) != len(cpu_tensors):
            raise AttachError(
                f"{compiled} has {len(compiled_tensors)} {kind} tensor(s) but the package model {cpu_model} has {len(cpu_tensors)}: {advice}"
            )
        for position, (ours, theirs) in enumerate(zip(compiled_tensors, cpu_tensors)):
            if not ours.matches(theirs):
                raise AttachError(
                    f"{compiled} {kind} {position} ({ours.describe()}) differs from the package model {cpu_model} ({theirs.describe()}): {advice}"
                )
    if compiled_io.inputs and not _fits_manifest_input(compiled_io.inputs[0], manifest):
        spec = manifest.input
        raise AttachError(
            f"{compiled} input 0 ({compiled_io.inputs[0].describe()}) differs from the input the manifest of {cpu_model.parent} records "
            f"({list(spec.shape)} {spec.dtype} scale {spec.scale} zero point {spec.zero_point}): {advice}"
        )


def _fits_manifest_input(tensor: IoTensor, manifest: Manifest) -> bool:
    spec = manifest.input
    if tensor.shape != tuple(spec.shape) or tensor.dtype != spec.dtype:
        return False
    if not spec.is_quantized:
        return True
    if len(tensor.scales) != 1 or len(tensor.zero_points) != 1 or spec.scale is None:
        return False
    # The manifest stores the scale as a JSON double and the file as a float32.
    return abs(tensor.scales[0] - spec.scale) <= 1e-6 * spec.scale and tensor.zero_points[0] == spec.zero_point


def _read_compiler_log(path: Path) -> CompilerLog:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise CompiledModelNotFoundError(
            f"compiler log {path} not found: give the <model>{COMPILED_SUFFIX}.log file that edgetpu_compiler wrote "
            "into its output folder, or leave out --log"
        ) from exc
    except OSError as exc:
        raise AttachError(f"compiler log {path} cannot be read ({exc}): check its permissions") from exc
    compiler_log = parse_compiler_log(text)
    if compiler_log.version is None and not compiler_log.rows:
        raise AttachError(
            f"{path} is not an edgetpu_compiler log: it has no 'Edge TPU Compiler version' line and no operator table; "
            "give the <model>_edgetpu.log file the compiler wrote into its output folder"
        )
    return compiler_log


def _read_report(path: Path, *, required: bool) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise CompiledModelNotFoundError(
                f"conversion report {path} not found: give the report that `edge-sdk convert` wrote "
                "(PACKAGE.report.json beside the package unless its --report named another file) with --report FILE"
            )
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttachError(f"conversion report {path} is not valid JSON ({exc}): give the report `edge-sdk convert` wrote") from exc
    if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise AttachError(f"{path} is not a conversion report (schema {found!r}, expected {REPORT_SCHEMA!r}): give the report `edge-sdk convert` wrote")
    return data


def _compiled_manifest(manifest: Manifest, compiled_bytes: bytes, compiler_log: CompilerLog | None) -> Manifest:
    cpu_path = Path(manifest.model_file)
    summary: dict[str, Any] = {
        "cpu_model_file": manifest.model_file,
        "cpu_model_sha256": manifest.model_sha256,
        "attached_by": f"edge-sdk {__version__}",
        "compiler_version": None,
    }
    if compiler_log is not None:
        summary.update(
            compiler_version=compiler_log.version,
            edgetpu_ops=compiler_log.edgetpu_op_count,
            cpu_ops=compiler_log.cpu_op_count,
            edgetpu_subgraphs=compiler_log.edgetpu_subgraphs,
        )
    new_manifest = replace(
        manifest,
        model_file=f"{cpu_path.stem}{COMPILED_SUFFIX}{cpu_path.suffix}",
        model_sha256=hashlib.sha256(compiled_bytes).hexdigest(),
        edgetpu_compiled=True,
        extra={**manifest.extra, "edgetpu": summary},
    )
    new_manifest.validate()
    return new_manifest


def _report_compiler_entry(compiled: Path, log: str | Path | None, compiler_log: CompilerLog | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"compiled": True, "attached_model": str(compiled), "attached_log": None if log is None else str(log)}
    if compiler_log is not None:
        entry.update(compiler_log.to_dict())
    return entry


def _write_files(
    package: Path, manifest: Manifest, compiled_bytes: bytes, report_path: Path | None, report_data: dict[str, Any] | None
) -> None:
    """Write the compiled model, then the manifest, then the report, each to a temporary name renamed into place.

    The manifest still names the CPU model until its own rename, so a failure
    before that leaves the package unchanged. The new model file is then
    removed again when it did not exist before.
    """
    destination = package / manifest.model_file
    mode = stat.S_IMODE((package / MANIFEST_FILENAME).stat().st_mode)
    existed = destination.exists()
    model_placed = False
    staged: list[Path] = []
    try:
        staged.append(_stage(package, compiled_bytes, mode))
        staged.append(_stage(package, manifest.to_json().encode("utf-8"), mode))
        if report_path is not None and report_data is not None:
            report_mode = stat.S_IMODE(report_path.stat().st_mode)
            staged.append(_stage(report_path.parent, (json.dumps(report_data, indent=2) + "\n").encode("utf-8"), report_mode))
        os.replace(staged[0], destination)
        model_placed = True
        os.replace(staged[1], package / MANIFEST_FILENAME)
    except BaseException as exc:
        for path in staged:
            path.unlink(missing_ok=True)
        if model_placed and not existed:
            destination.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AttachError(f"writing {destination} or the manifest into {package} failed ({exc}): the package was left unchanged; "
                              "check free space and permissions and run the command again") from exc
        raise
    if len(staged) == 3 and report_path is not None:
        try:
            os.replace(staged[2], report_path)
        except OSError as exc:
            staged[2].unlink(missing_ok=True)
            raise AttachError(
                f"{package} now contains the compiled model, but writing the report {report_path} failed ({exc}): "
                "the report still describes the CPU model; check its folder's permissions"
            ) from exc


def _stage(folder: Path, data: bytes, mode: int) -> Path:
    """Write `data` to a new hidden temporary file in `folder`, flushed to disk, and return its path."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".edge-sdk-attach-", suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(path, mode)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path

