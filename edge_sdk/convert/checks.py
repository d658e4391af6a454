"""Check what the converter built instead of trusting it.

`check_graph` verifies the input and output dtypes, the static batch-1 input,
full-integer ops for `int8` (the TFLite converter keeps an op it cannot
quantize in float and wraps it in DEQUANTIZE/QUANTIZE without failing) and
float16 weights for `fp16`.
"""

from __future__ import annotations

import logging

from edge_sdk.convert.edgetpu import float_ops
from edge_sdk.convert.errors import ModelCheckError, TargetCompatibilityError
from edge_sdk.convert.graph import ModelGraph
from edge_sdk.convert.quantize import io_dtype

logger = logging.getLogger(__name__)


def check_graph(graph: ModelGraph, mode: str, target: str, model_name: str) -> None:
    """Raise when the converted graph breaks the contract of `mode` and `target`."""
    expected = io_dtype(mode, target)
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for tensor in tensors:
            if tensor.dtype != expected:
                raise ModelCheckError(
                    f"{model_name} converted as {mode} for {target} has {kind} {tensor.name!r} of type {tensor.dtype}, "
                    f"expected {expected}; no package was written"
                )
    if len(graph.inputs) != 1:
        raise ModelCheckError(f"{model_name} converted to {len(graph.inputs)} inputs, expected one image input")
    image = graph.inputs[0]
    if image.is_dynamic or (image.shape and image.shape[0] != 1):
        raise ModelCheckError(
            f"{model_name} input has shape {list(image.shape_signature)}: edge targets need a static batch of 1; no package was written"
        )

    if mode == "int8":
        floating = float_ops(graph)
        if floating:
            names = ", ".join(f"{op.name} (op {op.position})" for op in floating)
            raise TargetCompatibilityError(
                f"{model_name} cannot run as full int8 for {target}: {names} still compute in float because the "
                "TFLite converter has no int8 kernel for them. Replace those layers with int8-capable ones "
                "(for example RELU instead of a custom activation), or use --target cpu with --quantize fp16 or dynamic"
            )
    if mode == "fp16" and not graph.constant_dtypes.get("float16"):
        raise ModelCheckError(f"{model_name} converted as fp16 contains no float16 weights ({graph.constant_dtypes}): the fp16 conversion failed; no package was written")
