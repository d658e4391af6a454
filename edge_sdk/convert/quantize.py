"""Run the TFLite converter for one quantization mode and target.

Modes:
- `fp32`: float weights and activations.
- `fp16`: float16 weights, float32 input and output; the runtime computes in float32.
- `dynamic`: int8 weights, activations quantized on the fly; float input and output.
- `int8`: full-integer ops calibrated on the representative dataset, with no
  float fallback. Input and output are uint8 for `coral` (what Edge TPU
  pipelines feed) and int8 for the other targets.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_sdk.convert.errors import ConversionFailedError, TargetCompatibilityError
from edge_sdk.convert.source import SourceModel

logger = logging.getLogger(__name__)

MODES = ("fp32", "fp16", "dynamic", "int8")
TARGET_DEFAULT_MODE = {"cpu": "auto", "jetson": "fp16", "coral": "int8"}
_UNQUANTIZABLE_OP = re.compile(r"(?:op|operation)[:\s]+'?([A-Za-z0-9_.]+)'?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One converted model: its mode, the strategy that converted it, and the flatbuffer."""

    mode: str
    strategy: str
    model_bytes: bytes


def io_dtype(mode: str, target: str) -> str:
    """Return the input and output dtype a mode produces for a target."""
    if mode != "int8":
        return "float32"
    return "uint8" if target == "coral" else "int8"


def convert_candidate(source: SourceModel, mode: str, target: str, calibration: np.ndarray | None) -> Candidate:
    """Convert `source` in `mode` for `target`, trying each converter strategy in turn."""
    if mode not in MODES:
        raise ConversionFailedError(f"quantization mode {mode!r} is unknown: expected one of {', '.join(MODES)}")
    if mode == "int8" and (calibration is None or len(calibration) == 0):
        raise ConversionFailedError(f"int8 conversion of {source.name} needs a calibration set: pass --calibration with real frames")

    failures: list[str] = []
    # Keras' SavedModel export prints a summary to stdout, which would corrupt `--json` output.
    with contextlib.redirect_stdout(sys.stderr):
        for strategy, converter in source.iter_converters():
            _configure(converter, mode, target, calibration)
            try:
                model_bytes = converter.convert()
            except Exception as exc:  # noqa: BLE001 - the TFLite converter raises many unrelated types
                message = _first_lines(exc)
                logger.warning("converting %s as %s with %s failed: %s", source.name, mode, strategy, message)
                failures.append(f"{strategy}: {message}")
                continue
            logger.info("converted %s as %s for %s with %s (%d bytes)", source.name, mode, target, strategy, len(model_bytes))
            return Candidate(mode, strategy, bytes(model_bytes))

    joined = "; ".join(failures)
    if mode == "int8" and "quantiz" in joined.lower():
        op = _UNQUANTIZABLE_OP.search(joined)
        op_name = op.group(1) if op else "an op"
        raise TargetCompatibilityError(
            f"model {source.name} cannot be fully quantized to int8 for {target}: {op_name} has no int8 kernel ({joined}). "
            "Replace that layer with one the int8 op set has, or pick --target cpu with --quantize fp16 or dynamic"
        )
    raise ConversionFailedError(f"model {source.name} could not be converted as {mode} for {target}: {joined}")


def _configure(converter: object, mode: str, target: str, calibration: np.ndarray | None) -> None:
    import tensorflow as tf

    if mode == "fp32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = _representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        dtype = tf.uint8 if io_dtype(mode, target) == "uint8" else tf.int8
        converter.inference_input_type = dtype
        converter.inference_output_type = dtype


def _representative_dataset(calibration: np.ndarray) -> object:
    def generate() -> Iterator[list[np.ndarray]]:
        for sample in calibration:
            yield [sample[np.newaxis].astype(np.float32)]

    return generate


def _first_lines(exc: BaseException, limit: int = 3) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # The converter prefixes MLIR errors with long source locations; keep the ones naming the failure.
    interesting = [line for line in lines if "error" in line.lower() or "quantiz" in line.lower()] or lines
    return " | ".join(interesting[:limit]) or type(exc).__name__
