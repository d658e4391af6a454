"""Read the input and output tensors of a `.tflite` file without TensorFlow or an interpreter.

An Edge TPU model cannot be opened by an interpreter without the Edge TPU
delegate, because its `edgetpu-custom-op` is not registered. Its input and
output tensors are still plain TFLite tensors in the main subgraph, so they
are read here from the FlatBuffer with the bounds-checked reader of
`edge_sdk.runtime.model_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The FlatBuffer field numbers and the reader are internal to the runtime package.
from edge_sdk.runtime.model_file import (
    _MODEL_SUBGRAPHS,
    _QUANTIZATION_SCALE,
    _QUANTIZATION_ZERO_POINT,
    _SUBGRAPH_INPUTS,
    _SUBGRAPH_OUTPUTS,
    _SUBGRAPH_TENSORS,
    _TENSOR_NAME,
    _TENSOR_QUANTIZATION,
    _TENSOR_SHAPE,
    _TENSOR_TYPE,
    _Reader,
    parse_model_bytes,
)

# TensorType numbers of the TFLite schema.
_TYPE_NAMES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 15: "uint32", 16: "uint16",
}


@dataclass(frozen=True, slots=True)
class IoTensor:
    """An input or output tensor of the main subgraph: name, static shape, type and quantization.

    `scales` and `zero_points` are empty for a tensor without quantization
    and have one entry per channel for per-channel quantization.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]

    def describe(self) -> str:
        """Return the tensor as `name [shape] dtype scale S zero point Z` for error messages."""
        text = f"{self.name} {list(self.shape)} {self.dtype}"
        if self.scales:
            text += f" scale {_join(self.scales)} zero point {_join(self.zero_points)}"
        return text

    def matches(self, other: IoTensor) -> bool:
        """Tell whether shape, type and quantization are equal; names may differ."""
        return (self.shape, self.dtype, self.scales, self.zero_points) == (other.shape, other.dtype, other.scales, other.zero_points)


@dataclass(frozen=True, slots=True)
class ModelIo:
    """The input and output tensors of a model, in the order the subgraph lists them."""

    inputs: tuple[IoTensor, ...]
    outputs: tuple[IoTensor, ...]


def read_model_io(data: bytes, path: Path) -> ModelIo:
    """Check a model held in memory and return the input and output tensors of its main subgraph.

    Raises `InvalidModelError` naming `path` when the bytes are not a TFLite
    FlatBuffer or are corrupt.
    """
    parse_model_bytes(data, path)
    reader = _Reader(data, path)
    model = reader.unpack("<I", 0)
    subgraph = reader.tables(model, _MODEL_SUBGRAPHS)[0]
    tensors = reader.tables(subgraph, _SUBGRAPH_TENSORS)
    return ModelIo(
        inputs=tuple(_read_tensor(reader, tensors[index]) for index in _int_vector(reader, subgraph, _SUBGRAPH_INPUTS) if index >= 0),
        outputs=tuple(_read_tensor(reader, tensors[index]) for index in _int_vector(reader, subgraph, _SUBGRAPH_OUTPUTS) if index >= 0),
    )


def _read_tensor(reader: _Reader, tensor: int) -> IoTensor:
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantization = reader.table(tensor, _TENSOR_QUANTIZATION)
    if quantization is not None:
        first, count = reader.vector(quantization, _QUANTIZATION_SCALE, 4)
        scales = tuple(reader.unpack("<f", first + 4 * i) for i in range(count))
        first, count = reader.vector(quantization, _QUANTIZATION_ZERO_POINT, 8)
        zero_points = tuple(reader.unpack("<q", first + 8 * i) for i in range(count))
    type_number = reader.scalar(tensor, _TENSOR_TYPE, "<b")
    return IoTensor(
        name=reader.string(tensor, _TENSOR_NAME) or "",
        shape=tuple(_int_vector(reader, tensor, _TENSOR_SHAPE)),
        dtype=_TYPE_NAMES.get(type_number, f"type {type_number}"),
        scales=scales,
        zero_points=zero_points,
    )


def _int_vector(reader: _Reader, table: int, field_index: int) -> list[int]:
    first, count = reader.vector(table, field_index, 4)
    return [reader.unpack("<i", first + 4 * i) for i in range(count)]


def _join(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return ",".join(f"{value:.6g}" for value in values)
