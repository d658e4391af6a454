"""Edge TPU rules: which ops of an int8 model the Edge TPU compiler can map, and where it cuts the graph.

The rules follow Coral's published model requirements. Tensors are 8-bit
quantized and their sizes are static. A tensor has at most 3 dimensions, or 4
with only the 3 innermost larger than 1. The op is on the supported list, and
pooling and concatenation carry no fused activation. The compiler maps ops in order
and cuts the graph once, at the first op it cannot map, so that op and every
op after it run on the CPU.

Op versions the compiler cannot parse are checked in `edgetpu_versions`.

NOTE: size-dependent limits (large RESHAPE or RESIZE_BILINEAR) are known only
to the compiler itself. Run `edgetpu_compiler` for the final word, which
`edge-sdk convert` does when the compiler is on PATH.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edge_sdk.convert.graph import ModelGraph, OpInfo, TensorInfo

# TFLite builtin op names the Edge TPU compiler maps (Coral's supported operations table).
EDGETPU_OPS = frozenset(
    {
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
        "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "UNIDIRECTIONAL_SEQUENCE_LSTM", "MAXIMUM",
        "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX",
        "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE",
        "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    }
)
NO_FUSED_ACTIVATION_OPS = frozenset({"AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"})
QUANTIZED_DTYPES = frozenset({"int8", "uint8"})
FLOAT_DTYPES = frozenset({"float32", "float16", "float64", "bfloat16"})
# Constant tensors an int8 op may carry besides its 8-bit weights: int32 biases and shape/axis operands.
ALLOWED_CONSTANT_DTYPES = frozenset({"int8", "uint8", "int32", "int64"})

STATUS_TPU = "Mapped to Edge TPU"
STATUS_AFTER_CUT = "Runs on the CPU because an earlier op cut the graph (the compiler makes one Edge TPU subgraph)"


@dataclass(frozen=True, slots=True)
class OpVerdict:
    """The placement of one op (Edge TPU or CPU) with the reason."""

    position: int
    op: str
    version: int
    on_edgetpu: bool
    reason: str


@dataclass(frozen=True, slots=True)
class EdgeTpuAnalysis:
    """The per-op verdicts, the first op that falls back (where the graph is cut) and the counts."""

    verdicts: tuple[OpVerdict, ...]
    cut_at: int | None

    @property
    def edgetpu_op_count(self) -> int:
        return sum(1 for v in self.verdicts if v.on_edgetpu)

    @property
    def cpu_ops(self) -> tuple[OpVerdict, ...]:
        return tuple(v for v in self.verdicts if not v.on_edgetpu)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edgetpu_ops": self.edgetpu_op_count,
            "cpu_ops": len(self.cpu_ops),
            "cut_at": self.cut_at,
            "fallbacks": [asdict(v) for v in self.cpu_ops],
        }


def float_ops(graph: ModelGraph) -> tuple[OpInfo, ...]:
    """Return the ops that compute in floating point (a float input or output activation)."""
    found = []
    for op in graph.ops:
        activations = [t for t in op.inputs + op.outputs if not t.is_constant]
        if any(t.dtype in FLOAT_DTYPES for t in activations):
            found.append(op)
    return tuple(found)


def analyze_edgetpu(graph: ModelGraph) -> EdgeTpuAnalysis:
    """Apply the Edge TPU rules to every op and mark everything after the first unmappable op as CPU."""
    verdicts = []
    cut_at: int | None = None
    for op in graph.ops:
        reason = _first_broken_rule(op, graph)
        if reason is None and cut_at is not None:
            reason = STATUS_AFTER_CUT
        if reason is not None and cut_at is None:
            cut_at = op.position
        verdicts.append(OpVerdict(op.position, op.name, op.version, reason is None, reason or STATUS_TPU))
    return EdgeTpuAnalysis(tuple(verdicts), cut_at)


def _first_broken_rule(op: OpInfo, graph: ModelGraph) -> str | None:
    if graph.subgraph_count > 1:
        return f"the model has {graph.subgraph_count} subgraphs; the Edge TPU compiler maps only the first"
    if op.name not in EDGETPU_OPS:
        return f"{op.name} is not an Edge TPU op"
    activations = [t for t in op.inputs + op.outputs if not t.is_constant]
    for tensor in activations:
        if tensor.dtype not in QUANTIZED_DTYPES:
            return f"tensor {tensor.name!r} is {tensor.dtype}; the Edge TPU runs only int8/uint8 tensors"
    for tensor in op.inputs:
        if tensor.is_constant and tensor.dtype not in ALLOWED_CONSTANT_DTYPES:
            return f"constant tensor {tensor.name!r} is {tensor.dtype}; weights must be quantized to 8 bits"
    for tensor in activations:
        problem = _shape_problem(tensor)
        if problem:
            return problem
    if op.name in NO_FUSED_ACTIVATION_OPS and op.fused_activation != "NONE":
        return f"{op.name} has a fused {op.fused_activation} activation, which the Edge TPU does not support on this op"
    return None


def _shape_problem(tensor: TensorInfo) -> str | None:
    if tensor.is_dynamic:
        return f"tensor {tensor.name!r} has a dynamic shape {list(tensor.shape_signature)}; sizes must be static"
    if len(tensor.shape) > 4:
        return f"tensor {tensor.name!r} has {len(tensor.shape)} dimensions; the Edge TPU takes at most 4"
    if len(tensor.shape) == 4 and tensor.shape[0] > 1:
        return f"tensor {tensor.name!r} has shape {list(tensor.shape)}; in a 4-D tensor only the 3 innermost dimensions may exceed 1"
    return None
