"""Check a `.tflite` file before an interpreter loads it, and list its operators.

A TFLite model is a FlatBuffer whose file identifier (bytes 4 to 8) is
`TFL3`. This module reads the few tables it needs (operator codes, the
operators and tensors of each subgraph, the buffers) with every offset
bounds-checked. A text file, a truncated download or a corrupt model so
gets a clear `InvalidModelError` instead of reaching native code. It also
finds the custom operators (`edgetpu-custom-op` marks a model compiled for
the Edge TPU).

Field numbers of the TFLite schema read here, checked against the operator
counts and tensor shapes the interpreters report for the models in the tests:
Model {version 0, operator_codes 1, subgraphs 2, description 3, buffers 4},
OperatorCode {deprecated_builtin_code 0, custom_code 1, version 2, builtin_code 3},
SubGraph {tensors 0, inputs 1, outputs 2, operators 3, name 4},
Tensor {shape 0, type 1, buffer 2, name 3, quantization 4, shape_signature 7},
QuantizationParameters {min 0, max 1, scale 2, zero_point 3},
Operator {opcode_index 0, inputs 1, outputs 2, builtin_options 4, custom_options 5, intermediates 8},
Buffer {data 0, offset 1, size 2}.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.runtime.errors import InvalidModelError, ModelNotFoundError

TFLITE_FILE_IDENTIFIER = b"TFL3"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
BUILTIN_CUSTOM = 32  # BuiltinOperator.CUSTOM in the schema

# Upper bound on the sum of all tensor sizes a model may declare. Real image
# models stay far below (detect.tflite declares about 12 MB); a corrupt shape
# declared gigabytes and made the interpreter exhaust memory.
# NOTE: a guessed bound; raise it for very large models.
MAX_DECLARED_TENSOR_BYTES = 4 << 30

# Bytes per element by TensorType number: FLOAT32 0, FLOAT16 1, INT32 2,
# UINT8 3, INT64 4, STRING 5, BOOL 6, INT16 7, COMPLEX64 8, INT8 9, FLOAT64 10,
# COMPLEX128 11, UINT64 12, UINT32 15, UINT16 16. Other types count 8 bytes.
_ELEMENT_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 1, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2}

_MODEL_OPERATOR_CODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 1, 2, 3, 4
_OPCODE_DEPRECATED_BUILTIN, _OPCODE_CUSTOM_CODE, _OPCODE_BUILTIN = 0, 1, 3
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS, _SUBGRAPH_NAME = 0, 1, 2, 3, 4
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_NAME, _TENSOR_QUANTIZATION, _TENSOR_SHAPE_SIGNATURE = 0, 1, 2, 3, 4, 7
_QUANTIZATION_MIN, _QUANTIZATION_MAX, _QUANTIZATION_SCALE, _QUANTIZATION_ZERO_POINT = 0, 1, 2, 3
_OPERATOR_INPUTS, _OPERATOR_OUTPUTS, _OPERATOR_BUILTIN_OPTIONS, _OPERATOR_CUSTOM_OPTIONS, _OPERATOR_INTERMEDIATES = 1, 2, 4, 5, 8
_OPERATOR_OPCODE_INDEX = 0
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class OperatorCode:
    """One entry of the model's operator table: a builtin code, or CUSTOM with a name."""

    builtin_code: int
    custom_code: str | None

    @property
    def is_custom(self) -> bool:
        return self.builtin_code == BUILTIN_CUSTOM


@dataclass(frozen=True, slots=True)
class ModelFileInfo:
    """Facts about a `.tflite` file read without an interpreter."""

    path: Path
    size_bytes: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    operator_counts: dict[int, int]  # operator code index -> number of uses over all subgraphs
    subgraph_count: int

    @property
    def custom_ops(self) -> tuple[str, ...]:
        """Names of the custom operators the model uses, sorted."""
        names = {code.custom_code or "<unnamed>" for index, code in enumerate(self.operator_codes)
                 if code.is_custom and self.operator_counts.get(index)}
        return tuple(sorted(names))

    @property
    def is_edgetpu_compiled(self) -> bool:
        return EDGETPU_CUSTOM_OP in self.custom_ops


class _Reader:
    """Bounds-checked FlatBuffer access; every failure raises InvalidModelError naming the file."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path

    def fail(self, what: str) -> InvalidModelError:
        return InvalidModelError(
            f"{self.path} is truncated or corrupt ({what}, file is {len(self.data)} bytes): "
            "copy the model again or re-export it"
        )

    def unpack(self, fmt: str, position: int) -> int:
        size = struct.calcsize(fmt)
        if position < 0 or position + size > len(self.data):
            raise self.fail(f"offset {position} is past the end")
        return struct.unpack_from(fmt, self.data, position)[0]

    def field_position(self, table: int, field_index: int) -> int | None:
        vtable = table - self.unpack("<i", table)
        vtable_size = self.unpack("<H", vtable)
        slot = 4 + 2 * field_index
        if slot + 2 > vtable_size:
            return None
        offset = self.unpack("<H", vtable + slot)
        return table + offset if offset else None

    def scalar(self, table: int, field_index: int, fmt: str, default: int = 0) -> int:
        position = self.field_position(table, field_index)
        return default if position is None else self.unpack(fmt, position)

    def indirect(self, table: int, field_index: int) -> int | None:
        position = self.field_position(table, field_index)
        return None if position is None else position + self.unpack("<I", position)

    def vector(self, table: int, field_index: int, element_size: int) -> tuple[int, int]:
        """Return (first element position, length) of a vector field, (0, 0) when absent."""
        start = self.indirect(table, field_index)
        if start is None:
            return 0, 0
        length = self.unpack("<I", start)
        if start + 4 + length * element_size > len(self.data):
            raise self.fail(f"a vector of {length} elements at offset {start} runs past the end")
        return start + 4, length

    def tables(self, table: int, field_index: int) -> list[int]:
        first, length = self.vector(table, field_index, 4)
        found = [first + 4 * i + self.unpack("<I", first + 4 * i) for i in range(length)]
        for position in found:
            self.check_table(position)
        return found

    def table(self, table: int, field_index: int) -> int | None:
        position = self.indirect(table, field_index)
        if position is not None:
            self.check_table(position)
        return position

    def check_table(self, table: int) -> None:
        """Check that a table, its vtable and every field the vtable lists lie inside the file."""
        vtable = table - self.unpack("<i", table)
        vtable_size = self.unpack("<H", vtable)
        table_size = self.unpack("<H", vtable + 2)
        if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > len(self.data) or table + table_size > len(self.data):
            raise self.fail(f"the table at offset {table} has an invalid layout")
        for slot in range(4, vtable_size, 2):
            if self.unpack("<H", vtable + slot) >= max(table_size, 1):
                raise self.fail(f"a field of the table at offset {table} lies outside the table")

    def indices(self, table: int, field_index: int, count: int, what: str) -> None:
        """Check an int32 index vector: every value is -1 (optional) or below `count`."""
        first, length = self.vector(table, field_index, 4)
        for position in range(first, first + 4 * length, 4):
            value = self.unpack("<i", position)
            if not -1 <= value < count:
                raise self.fail(f"{what} refers to index {value} of {count}")

    def string(self, table: int, field_index: int) -> str | None:
        first, length = self.vector(table, field_index, 1)
        if first == 0:
            return None
        return self.data[first : first + length].decode("utf-8", errors="replace")


def read_model_info(path: str | Path) -> ModelFileInfo:
    """Read and check a `.tflite` file; raise ModelNotFoundError or InvalidModelError with the next step."""
    path = Path(path)
    if path.is_dir():
        raise InvalidModelError(f"{path} is a directory, not a .tflite file: load a package directory with Model.load")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"model file {path} not found: check the path or deploy the model first") from exc
    except OSError as exc:
        raise InvalidModelError(f"model file {path} cannot be read ({exc}): check its permissions") from exc
    return parse_model_bytes(data, path)


def parse_model_bytes(data: bytes, path: Path) -> ModelFileInfo:
    """Check the FlatBuffer structure of a model held in memory; `path` is only used in messages."""
    if not data:
        raise InvalidModelError(f"{path} is empty (0 bytes), not a TFLite model: copy the model again or re-export it")
    if len(data) < 8 or data[4:8] != TFLITE_FILE_IDENTIFIER:
        found = data[4:8] if len(data) >= 8 else data[:8]
        raise InvalidModelError(
            f"{path} is not a TFLite model: its FlatBuffer file identifier is {found!r}, expected {TFLITE_FILE_IDENTIFIER!r} "
            f"({len(data)} bytes). Give a .tflite file exported by the TFLite converter"
        )
    reader = _Reader(data, path)
    model = reader.unpack("<I", 0)
    codes = tuple(_read_operator_code(reader, table) for table in reader.tables(model, _MODEL_OPERATOR_CODES))
    subgraphs = reader.tables(model, _MODEL_SUBGRAPHS)
    if not subgraphs:
        raise reader.fail("the model has no subgraph")
    counts = _count_operators(reader, subgraphs, len(codes))
    _check_tensor_sizes(reader, subgraphs)
    buffer_count = reader.vector(model, _MODEL_BUFFERS, 4)[1]
    for subgraph in subgraphs:
        _check_subgraph(reader, subgraph, buffer_count)
    _check_buffers(reader, model)

    return ModelFileInfo(
        path=path,
        size_bytes=len(data),
        description=reader.string(model, _MODEL_DESCRIPTION) or "",
        operator_codes=codes,
        operator_counts=dict(counts),
        subgraph_count=len(subgraphs),
    )


def _check_tensor_sizes(reader: _Reader, subgraphs: list[int]) -> None:
    total = 0
    for subgraph in subgraphs:
        for tensor in reader.tables(subgraph, _SUBGRAPH_TENSORS):
            first, rank = reader.vector(tensor, _TENSOR_SHAPE, 4)
            elements = 1
            for position in range(first, first + 4 * rank, 4):
                elements *= max(1, reader.unpack("<i", position))
            total += elements * _ELEMENT_BYTES.get(reader.scalar(tensor, _TENSOR_TYPE, "<b"), 8)
            if total > MAX_DECLARED_TENSOR_BYTES:
                raise reader.fail(
                    f"its tensors declare more than {MAX_DECLARED_TENSOR_BYTES / 2**30:.0f} GiB, so a tensor shape is corrupt"
                )


def _check_subgraph(reader: _Reader, subgraph: int, buffer_count: int) -> None:
    """Check the tables and indices of one subgraph that the interpreter follows without verifying them."""
    tensors = reader.tables(subgraph, _SUBGRAPH_TENSORS)
    reader.string(subgraph, _SUBGRAPH_NAME)
    reader.indices(subgraph, _SUBGRAPH_INPUTS, len(tensors), "a subgraph input")
    reader.indices(subgraph, _SUBGRAPH_OUTPUTS, len(tensors), "a subgraph output")
    for tensor in tensors:
        reader.vector(tensor, _TENSOR_SHAPE_SIGNATURE, 4)
        reader.string(tensor, _TENSOR_NAME)
        buffer = reader.scalar(tensor, _TENSOR_BUFFER, "<I")
        if buffer >= max(buffer_count, 1):
            raise reader.fail(f"a tensor refers to buffer {buffer} of {buffer_count}")
        quantization = reader.table(tensor, _TENSOR_QUANTIZATION)
        if quantization is not None:
            for field_index, size in ((_QUANTIZATION_MIN, 4), (_QUANTIZATION_MAX, 4), (_QUANTIZATION_SCALE, 4), (_QUANTIZATION_ZERO_POINT, 8)):
                reader.vector(quantization, field_index, size)
    for operator in reader.tables(subgraph, _SUBGRAPH_OPERATORS):
        for field_index in (_OPERATOR_INPUTS, _OPERATOR_OUTPUTS, _OPERATOR_INTERMEDIATES):
            reader.indices(operator, field_index, len(tensors), "an operator")
        reader.table(operator, _OPERATOR_BUILTIN_OPTIONS)
        reader.vector(operator, _OPERATOR_CUSTOM_OPTIONS, 1)


def _count_operators(reader: _Reader, subgraphs: list[int], code_count: int) -> Counter[int]:
    counts: Counter[int] = Counter()
    for subgraph in subgraphs:
        for operator in reader.tables(subgraph, _SUBGRAPH_OPERATORS):
            index = reader.scalar(operator, _OPERATOR_OPCODE_INDEX, "<I")
            if index >= code_count:
                raise reader.fail(f"an operator uses operator code {index} of {code_count}")
            counts[index] += 1
    return counts


def _check_buffers(reader: _Reader, model: int) -> None:
    """Check that every weight buffer lies inside the file, which is where a truncated download fails."""
    for buffer in reader.tables(model, _MODEL_BUFFERS):
        reader.vector(buffer, _BUFFER_DATA, 1)
        offset = reader.scalar(buffer, _BUFFER_OFFSET, "<Q")
        size = reader.scalar(buffer, _BUFFER_SIZE, "<Q")
        # Models over 2 GB keep weights after the FlatBuffer, addressed by an
        # offset from the file start. Offsets 0 and 1 are taken as "no external
        # data". NOTE: no model over 2 GB was at hand to test this branch.
        if offset > 1 and offset + size > len(reader.data):
            raise reader.fail(f"a weight buffer at offset {offset} of {size} bytes lies outside the file")


def _read_operator_code(reader: _Reader, table: int) -> OperatorCode:
    # Newer files store the code in the int32 `builtin_code`, while older files
    # only set the int8 `deprecated_builtin_code`, so take the larger one.
    deprecated = reader.scalar(table, _OPCODE_DEPRECATED_BUILTIN, "<b")
    builtin = reader.scalar(table, _OPCODE_BUILTIN, "<i")
    return OperatorCode(builtin_code=max(deprecated, builtin), custom_code=reader.string(table, _OPCODE_CUSTOM_CODE))
