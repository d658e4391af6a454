"""Read the operators and tensors of a converted `.tflite` model for the post-conversion checks.

Uses TensorFlow's own FlatBuffer reader (`tensorflow.lite.tools.flatbuffer_utils`),
so op names, versions and tensor types are the converter's, not a re-parse.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from edge_sdk.convert.errors import ModelCheckError


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor: name, static shape, shape signature (-1 marks a dynamic size), type, constness."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    is_constant: bool

    @property
    def is_dynamic(self) -> bool:
        return any(dim < 0 for dim in self.shape_signature)


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One operator in execution order, with its builtin name and op version."""

    position: int
    name: str
    version: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    fused_activation: str = "NONE"


@dataclass(frozen=True, slots=True)
class ModelGraph:
    """The ops of the main subgraph, the model's input and output tensors, and the subgraph count."""

    ops: tuple[OpInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    subgraph_count: int
    constant_dtypes: dict[str, int]  # dtype -> number of constant (weight) tensors with it
    min_runtime_version: str | None = None  # the converter's "min_runtime_version" metadata, when present

    def op_counts(self) -> dict[str, int]:
        return dict(Counter(op.name for op in self.ops))


def read_graph(model_bytes: bytes) -> ModelGraph:
    """Parse a TFLite flatbuffer into a `ModelGraph`; raise ModelCheckError when it cannot be read."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    except Exception as exc:  # noqa: BLE001 - the generated reader raises struct and index errors
        raise ModelCheckError(f"the converted model could not be parsed as a TFLite flatbuffer ({exc}): this is a converter bug") from exc

    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    activation_names = {value: name for name, value in vars(schema.ActivationFunctionType).items() if not name.startswith("_")}
    type_names = {value: name.lower() for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    subgraph = model.subgraphs[0]
    tensors = [_tensor_info(index, tensor, model, type_names) for index, tensor in enumerate(subgraph.tensors)]

    ops = []
    for position, op in enumerate(subgraph.operators or ()):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM" and code.customCode:
            name = f"CUSTOM:{_decode(code.customCode)}"
        ops.append(
            OpInfo(
                position,
                name,
                int(code.version),
                tuple(tensors[i] for i in (op.inputs if op.inputs is not None else ()) if i >= 0),
                tuple(tensors[i] for i in (op.outputs if op.outputs is not None else ()) if i >= 0),
                activation_names.get(getattr(op.builtinOptions, "fusedActivationFunction", 0), "NONE"),
            )
        )
    constant_dtypes = Counter(t.dtype for t in tensors if t.is_constant)
    return ModelGraph(
        tuple(ops),
        tuple(tensors[i] for i in subgraph.inputs),
        tuple(tensors[i] for i in subgraph.outputs),
        len(model.subgraphs),
        dict(constant_dtypes),
        _metadata_text(model, "min_runtime_version"),
    )


def _metadata_text(model: Any, name: str) -> str | None:
    """Return a metadata buffer as text with its NUL padding removed, or None when the model lacks it."""
    for entry in model.metadata or ():
        if _decode(entry.name) != name or not 0 <= entry.buffer < len(model.buffers):
            continue
        data = model.buffers[entry.buffer].data
        if data is None:
            return None
        return bytes(bytearray(data)).rstrip(b"\0").decode("ascii", "replace") or None
    return None


def _tensor_info(index: int, tensor: Any, model: Any, type_names: dict[int, str]) -> TensorInfo:
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    signature = tuple(int(d) for d in tensor.shapeSignature) if tensor.shapeSignature is not None else shape
    buffer = model.buffers[tensor.buffer] if 0 <= tensor.buffer < len(model.buffers) else None
    has_data = buffer is not None and (buffer.data is not None and len(buffer.data) > 0 or getattr(buffer, "size", 0) > 0)
    return TensorInfo(index, _decode(tensor.name), shape, signature, type_names.get(tensor.type, str(tensor.type)), has_data)


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
