"""Describe a model for `edge-sdk inspect`: tensors, quantization, operator counts, size."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.runtime.backends import resolve_backend
from edge_sdk.runtime.errors import RuntimeModelError
from edge_sdk.runtime.interpreter import DelegateSpec, open_interpreter
from edge_sdk.runtime.loading import is_package, open_package_model, require_file
from edge_sdk.runtime.model_file import ModelFileInfo, read_model_info


def describe_model(
    path: str | Path,
    *,
    backend: str | None = None,
    num_threads: int | None = None,
    delegates: Iterable[DelegateSpec | str] = (),
) -> dict[str, Any]:
    """Return a JSON-ready description of a package or `.tflite` file.

    When no interpreter can be created (an Edge TPU model without a Coral, a
    missing custom operator), the description still lists what the file
    itself records and gives the error under `interpreter_error`.
    """
    path = Path(path)
    require_file(path)
    temporary_dir = Path(tempfile.mkdtemp(prefix="edge-sdk-inspect-")) if path.is_file() and is_package(path) else None
    try:
        description: dict[str, Any] = {"path": str(path)}
        model_path = path
        if is_package(path):
            model_path, manifest, _ = open_package_model(path, temporary_dir or path)
            description["manifest"] = manifest.to_dict()
        info = read_model_info(model_path)
        description.update(_file_facts(model_path, info))
        try:
            handle = open_interpreter(model_path, backend=backend, num_threads=num_threads, delegates=delegates)
        except RuntimeModelError as exc:
            description["interpreter_error"] = str(exc)
            description["operators"] = _operator_counts_from_file(info)
            return description
        interpreter = handle.interpreter
        description["backend"] = handle.backend
        description["inputs"] = [_tensor_facts(detail) for detail in interpreter.get_input_details()]
        description["outputs"] = [_tensor_facts(detail) for detail in interpreter.get_output_details()]
        description["operators"] = _operator_counts(handle.backend, model_path, info)
        return description
    finally:
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)


def format_description(description: dict[str, Any]) -> str:
    """Render a description from `describe_model` as text for a terminal."""
    lines = [
        f"model      {description['model_file']}",
        f"size       {description['size_bytes']:,} bytes",
        f"subgraphs  {description['subgraphs']}",
    ]
    if description.get("description"):
        lines.append(f"producer   {description['description']}")
    if "manifest" in description:
        manifest = description["manifest"]
        lines.append(f"package    {manifest['name']} {manifest['version']} ({manifest['task']}, target {manifest['target']}, {manifest['quantization']})")
    if description.get("custom_ops"):
        lines.append(f"custom ops {', '.join(description['custom_ops'])}")
    if description.get("edgetpu_compiled"):
        lines.append("edge tpu   compiled for the Edge TPU: runs only with the Edge TPU delegate")
    if "backend" in description:
        lines.append(f"backend    {description['backend']}")
    for key in ("inputs", "outputs"):
        lines.append(f"{key}:")
        for tensor in description.get(key, []):
            lines.append(f"  {tensor['name']}  {tensor['shape']}  {tensor['dtype']}  {_format_quantization(tensor['quantization'])}")
    if "interpreter_error" in description:
        lines.append(f"interpreter: {description['interpreter_error']}")
    lines.append("operators:")
    for name, count in description["operators"].items():
        lines.append(f"  {count:4d}  {name}")
    return "\n".join(lines)


def _file_facts(model_path: Path, info: ModelFileInfo) -> dict[str, Any]:
    return {
        "model_file": str(model_path),
        "size_bytes": info.size_bytes,
        "description": info.description,
        "subgraphs": info.subgraph_count,
        "custom_ops": list(info.custom_ops),
        "edgetpu_compiled": info.is_edgetpu_compiled,
    }


def _tensor_facts(detail: dict[str, Any]) -> dict[str, Any]:
    parameters = detail.get("quantization_parameters") or {}
    scales = np.asarray(parameters.get("scales", []))
    zero_points = np.asarray(parameters.get("zero_points", []))
    if scales.size > 1:
        quantization: dict[str, Any] | None = {
            "per_channel": True,
            "channels": int(scales.size),
            "axis": int(parameters.get("quantized_dimension", 0)),
            "scale_range": [float(scales.min()), float(scales.max())],
        }
    elif detail["quantization"][0]:
        quantization = {"scale": float(detail["quantization"][0]), "zero_point": int(detail["quantization"][1])}
    else:
        quantization = None
    return {
        "name": detail["name"],
        "index": int(detail["index"]),
        "shape": [int(d) for d in detail["shape"]],
        "shape_signature": [int(d) for d in detail.get("shape_signature", detail["shape"])],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": quantization,
    }


def _format_quantization(quantization: dict[str, Any] | None) -> str:
    if quantization is None:
        return "not quantized"
    if quantization.get("per_channel"):
        low, high = quantization["scale_range"]
        return f"per-channel ({quantization['channels']} scales {low:.3g}..{high:.3g}, axis {quantization['axis']})"
    return f"scale {quantization['scale']:.6g} zero point {quantization['zero_point']}"


def _operator_counts(backend_name: str, model_path: Path, info: ModelFileInfo) -> dict[str, int]:
    """Count operators by name in an interpreter without default delegates.

    With XNNPACK applied, most operators would show as DELEGATE nodes, so a
    second interpreter is created with the plain builtin resolver. Falls back
    to the file's operator codes when the backend cannot do that.
    """
    _, interpreter_class, _ = resolve_backend(backend_name)
    module = importlib.import_module(interpreter_class.__module__)
    resolver = getattr(getattr(module, "OpResolverType", None), "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
    if resolver is None:
        return _operator_counts_from_file(info)
    try:
        plain = interpreter_class(model_path=str(model_path), experimental_op_resolver_type=resolver)
        details = plain._get_ops_details()
    except (RuntimeError, ValueError, AttributeError):
        return _operator_counts_from_file(info)
    counts = Counter(op["op_name"] for op in details)
    return dict(counts.most_common())


def _operator_counts_from_file(info: ModelFileInfo) -> dict[str, int]:
    """Count operators by the file's operator codes (builtins by number, custom ops by name)."""
    counts: Counter[str] = Counter()
    for index, uses in info.operator_counts.items():
        code = info.operator_codes[index]
        counts[code.custom_code or "<unnamed custom>" if code.is_custom else f"builtin operator {code.builtin_code}"] += uses
    return dict(counts.most_common())
