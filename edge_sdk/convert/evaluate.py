"""Run a converted model in the vehicle runtime and compare it with the float source model.

The converted model is loaded with `edge_sdk.runtime.interpreter`, the code
that loads it on the vehicle. Inputs are the normalized float tensors the
runtime's `normalize` produced, quantized with the input tensor's own scale
and zero point. Outputs are dequantized with each output tensor's parameters.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.convert.errors import ModelCheckError
from edge_sdk.convert.source import capture_native_stderr

logger = logging.getLogger(__name__)

TIMING_FRAMES = 50
WARMUP_INVOKES = 3
# An output whose values vary less than this over the whole set has collapsed to a constant.
CONSTANT_OUTPUT_SPREAD = 1e-6

_QUANTIZED_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The comparison of a converted model with the source on one set of inputs.

    Top-1 figures are fractions in [0, 1] and are None when the set has no labels.
    """

    samples: int
    float_top1: float | None
    quantized_top1: float | None
    top1_agreement: float
    mean_abs_diff: tuple[float, ...]  # one per output tensor
    constant_outputs: tuple[int, ...]  # indices of outputs that collapsed to a constant

    @property
    def accuracy_drop_points(self) -> float:
        """Accuracy lost in percentage points: float minus quantized top-1, or the disagreement rate without labels."""
        if self.float_top1 is not None and self.quantized_top1 is not None:
            return 100.0 * (self.float_top1 - self.quantized_top1)
        return 100.0 * (1.0 - self.top1_agreement)


class TfliteRunner:
    """A converted model opened in the runtime, fed normalized float inputs one at a time."""

    def __init__(self, model_path: Path, num_threads: int | None = None) -> None:
        from edge_sdk.runtime.errors import RuntimeModelError
        from edge_sdk.runtime.interpreter import open_interpreter

        self.model_path = model_path
        try:
            with capture_native_stderr(model_path.name):  # LiteRT prints a line when it creates the XNNPACK delegate
                handle = open_interpreter(model_path, num_threads=num_threads)
        except RuntimeModelError as exc:
            raise ModelCheckError(f"the converted model does not load in the runtime ({exc}); no package was written") from exc
        self.backend = handle.backend
        self._interpreter = handle.interpreter
        self._input = self._interpreter.get_input_details()[0]
        self._outputs = self._interpreter.get_output_details()

    @property
    def input_details(self) -> dict[str, Any]:
        return self._input

    @property
    def output_details(self) -> list[dict[str, Any]]:
        return self._outputs

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Invoke on one normalized input [H, W, C] or [1, H, W, C]; return float32 outputs."""
        from edge_sdk.runtime.interpreter import invoke

        self._interpreter.set_tensor(self._input["index"], self._quantize(tensor.reshape(self._input["shape"])))
        invoke(self._interpreter, self.model_path)
        return [self._dequantize(detail) for detail in self._outputs]

    def time_invoke(self, tensors: np.ndarray) -> float:
        """Return the median invoke time in milliseconds over `tensors` (after a short warm-up)."""
        from edge_sdk.runtime.interpreter import invoke

        if len(tensors) == 0:
            raise ModelCheckError("no frames to time the model on: pass a calibration or validation set")
        quantized = [self._quantize(t.reshape(self._input["shape"])) for t in tensors[:TIMING_FRAMES]]
        for tensor in quantized[:WARMUP_INVOKES]:
            self._interpreter.set_tensor(self._input["index"], tensor)
            invoke(self._interpreter, self.model_path)
        durations = []
        for tensor in quantized:
            self._interpreter.set_tensor(self._input["index"], tensor)
            started = time.perf_counter()
            invoke(self._interpreter, self.model_path)
            durations.append(time.perf_counter() - started)
        return 1000.0 * statistics.median(durations)

    def _quantize(self, tensor: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._input["dtype"])
        if dtype not in _QUANTIZED_RANGES:
            return tensor.astype(dtype)
        scale, zero_point = self._input["quantization"]
        low, high = _QUANTIZED_RANGES[dtype]
        return np.clip(np.round(tensor / scale) + zero_point, low, high).astype(dtype)

    def _dequantize(self, detail: dict[str, Any]) -> np.ndarray:
        raw = self._interpreter.get_tensor(detail["index"])
        scale, zero_point = detail["quantization"]
        if np.dtype(detail["dtype"]) in _QUANTIZED_RANGES and scale:
            return (raw.astype(np.float32) - zero_point) * np.float32(scale)
        return raw.astype(np.float32)


def run_all(runner: TfliteRunner, inputs: np.ndarray, *, progress: bool = False, desc: str = "evaluation") -> list[np.ndarray]:
    """Run every input through the model; return one stacked array per output."""
    from tqdm import tqdm

    per_output: list[list[np.ndarray]] | None = None
    for tensor in tqdm(inputs, desc=desc, unit="image", disable=not progress):
        outputs = runner.run(tensor)
        if per_output is None:
            per_output = [[] for _ in outputs]
        for index, output in enumerate(outputs):
            per_output[index].append(output[0] if output.shape[:1] == (1,) else output)
    return [np.stack(values) for values in per_output or []]


def compare(source_outputs: list[np.ndarray], converted_outputs: list[np.ndarray], labels: np.ndarray | None) -> Evaluation:
    """Compare outputs of the source and the converted model on the same inputs.

    Outputs are matched by position, except that when the counts agree but a
    shape differs they are matched by shape. Top-1 uses the first output.
    """
    converted_outputs = _match_outputs(source_outputs, converted_outputs)
    reference, candidate = source_outputs[0], converted_outputs[0]
    samples = int(reference.shape[0])
    reference_top1 = np.argmax(reference.reshape(samples, -1), axis=1)
    candidate_top1 = np.argmax(candidate.reshape(samples, -1), axis=1)

    diffs = tuple(float(np.mean(np.abs(s.reshape(c.shape) - c))) for s, c in zip(source_outputs, converted_outputs))
    constant = tuple(
        index
        for index, (s, c) in enumerate(zip(source_outputs, converted_outputs))
        if float(np.ptp(c)) < CONSTANT_OUTPUT_SPREAD <= float(np.ptp(s))
    )
    float_top1 = quantized_top1 = None
    if labels is not None:
        float_top1 = float(np.mean(reference_top1 == labels))
        quantized_top1 = float(np.mean(candidate_top1 == labels))
    agreement = float(np.mean(reference_top1 == candidate_top1))
    return Evaluation(samples, float_top1, quantized_top1, agreement, diffs, constant)


def _match_outputs(source: list[np.ndarray], converted: list[np.ndarray]) -> list[np.ndarray]:
    if len(source) != len(converted):
        raise ModelCheckError(f"the converted model has {len(converted)} outputs but the source has {len(source)}: the conversion dropped or added an output")
    if all(s.size == c.size for s, c in zip(source, converted)):
        return converted
    by_size = {c.size: c for c in converted}
    if len(by_size) != len(converted) or any(s.size not in by_size for s in source):
        shapes = [list(c.shape) for c in converted]
        raise ModelCheckError(
            f"the converted outputs {shapes} do not match the source outputs {[list(s.shape) for s in source]}: "
            "the converter changed the output layout; no package was written"
        )
    return [by_size[s.size] for s in source]
