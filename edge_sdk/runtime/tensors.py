"""Read an interpreter's tensor details: input specs, detection output roles, dequantization.

Detection models end in `TFLite_Detection_PostProcess`, whose four outputs
(boxes [1, N, 4], classes [1, N], scores [1, N], count [1]) different
exporters list in different orders and under different names. They are
matched here by shape first, then by name, never by position in the output list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.package.manifest import DetectionOutputs, InputSpec
from edge_sdk.runtime.errors import ModelConfigError

logger = logging.getLogger(__name__)

_DTYPE_NAMES = {np.uint8: "uint8", np.int8: "int8", np.float32: "float32", np.float16: "float16"}

# The op's own output suffixes: TFLite_Detection_PostProcess:1 is classes, :2 scores, :3 count.
_POSTPROCESS_SUFFIX = re.compile(r"TFLite_Detection_PostProcess(?::(\d+))?$")
_ROLE_WORDS = {"classes": ("class", "label"), "scores": ("score", "confidence", "prob")}


@dataclass(frozen=True, slots=True)
class OutputTensor:
    """An output tensor's index and how to turn its values into real numbers."""

    name: str
    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Return float32 real values; quantized tensors use `(q - zero_point) * scale`."""
        if self.scale == 0.0:
            return values.astype(np.float32, copy=False)
        return (values.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)


def dtype_name(dtype: Any) -> str:
    name = _DTYPE_NAMES.get(np.dtype(dtype).type)
    if name is None:
        raise ModelConfigError(f"input dtype {np.dtype(dtype).name} is not supported: expected uint8, int8, float32 or float16")
    return name


def output_tensors(interpreter: Any) -> list[OutputTensor]:
    result = []
    for detail in interpreter.get_output_details():
        scale, zero_point = detail["quantization"]
        result.append(OutputTensor(detail["name"], int(detail["index"]), tuple(int(d) for d in detail["shape"]), float(scale), int(zero_point)))
    return result


def input_spec_from_details(
    detail: Mapping[str, Any],
    *,
    mean: Sequence[float] | float | None,
    std: Sequence[float] | float | None,
    color_order: str = "RGB",
    resize: str = "stretch",
    source: str = "model",
) -> InputSpec:
    """Build the InputSpec of a bare model's input tensor.

    A float input needs `mean` and `std` from the user because the model file
    does not record its normalization. A quantized input without them is fed
    raw pixels: mean and std are chosen so that normalization followed by
    quantization returns the pixel value itself (uint8) or the pixel minus 128 (int8).
    """
    shape = tuple(int(d) for d in detail["shape"])
    if len(shape) != 4:
        raise ModelConfigError(f"{source} input {detail['name']!r} has shape {list(shape)}: expected [batch, height, width, channels]")
    dtype = dtype_name(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype in ("uint8", "int8"):
        if not scale:
            raise ModelConfigError(f"{source} input {detail['name']!r} is {dtype} without quantization parameters: it cannot be fed images")
        if mean is None and std is None:
            raw_zero = 0 if dtype == "uint8" else -128
            mean = float(zero_point - raw_zero)
            std = 1.0 / float(scale)
    elif mean is None or std is None:
        raise ModelConfigError(
            f"{source} has a {dtype} input, so its normalization must be given: pass mean and std "
            "(for example mean=127.5, std=127.5 for inputs in [-1, 1], or mean=0, std=255 for [0, 1])"
        )
    return InputSpec(
        shape=(1,) + shape[1:],
        dtype=dtype,
        color_order=color_order,
        resize=resize,
        mean=_as_tuple(mean, "mean"),
        std=_as_tuple(std, "std"),
        scale=float(scale) if dtype in ("uint8", "int8") else None,
        zero_point=int(zero_point) if dtype in ("uint8", "int8") else None,
    )


def find_detection_outputs(
    outputs: Sequence[OutputTensor], signature_names: Mapping[int, str] | None = None
) -> tuple[DetectionOutputs, bool] | None:
    """Find the tensors of boxes, classes, scores and count; None when the outputs do not fit.

    Returns the names and whether names identified classes and scores (False
    means the two [1, N] outputs are in a guessed order). `signature_names` maps
    tensor index to its signature output name (such as `detection_scores`).
    """
    boxes = [o for o in outputs if len(o.shape) == 3 and o.shape[-1] == 4]
    count = [o for o in outputs if int(np.prod(o.shape)) == 1 and len(o.shape) <= 2]
    if len(boxes) != 1 or len(count) != 1:
        return None
    per_box = [o for o in outputs if len(o.shape) == 2 and o.shape[-1] == boxes[0].shape[1] and o is not count[0]]
    if len(per_box) != 2:
        return None
    classes, scores, named = _split_classes_and_scores(per_box, signature_names or {})
    return DetectionOutputs(boxes=boxes[0].name, classes=classes.name, scores=scores.name, count=count[0].name), named


def _split_classes_and_scores(
    pair: Sequence[OutputTensor], signature_names: Mapping[int, str]
) -> tuple[OutputTensor, OutputTensor, bool]:
    for names in ({o.index: signature_names.get(o.index, "") for o in pair}, {o.index: o.name for o in pair}):
        roles = {role: [o for o in pair if any(word in names[o.index].lower() for word in words)] for role, words in _ROLE_WORDS.items()}
        if len(roles["classes"]) == 1 and len(roles["scores"]) == 1 and roles["classes"][0] is not roles["scores"][0]:
            return roles["classes"][0], roles["scores"][0], True
    suffixes = {}
    for output in pair:
        match = _POSTPROCESS_SUFFIX.search(output.name)
        if match:
            suffixes[int(match.group(1) or 0)] = output
    if set(suffixes) == {1, 2}:
        return suffixes[1], suffixes[2], True
    logger.info("detection outputs %s and %s have no role names, so classes and scores are identified by value at the first detection", pair[0].name, pair[1].name)
    return pair[0], pair[1], False


def classes_look_like_scores(classes: np.ndarray, scores: np.ndarray) -> bool:
    """Tell whether two [N] arrays are the wrong way round: 'classes' fractional and 'scores' all whole numbers."""
    if classes.size == 0:
        return False
    classes_whole = bool(np.all(np.mod(classes, 1.0) == 0.0))
    scores_whole = bool(np.all(np.mod(scores, 1.0) == 0.0))
    return scores_whole and not classes_whole


def _as_tuple(value: Sequence[float] | float | None, name: str) -> tuple[float, ...]:
    if value is None:
        raise ModelConfigError(f"{name} is missing: give one value or one per channel")
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in value)
