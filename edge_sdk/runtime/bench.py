"""Measure `Model.predict()` against a bare interpreter `invoke()` on the same frames, in one run.

Each round first runs the bare path: the already preprocessed input tensor is
set and invoked, which is the least a hand-written loop can do. Then it runs
`predict()` on the frame the tensor came from, so both see the same machine load.
Two overhead figures are reported, both relative to the bare path's median:
`overhead_ms` is the median of `predict()` minus the median of the bare path,
and `added_work_ms` is the median over rounds of `predict()` time minus the
invoke time measured inside that same call. On a busy machine invoke times
vary by more than the overhead itself, and only the second figure stays stable.

A third path, `bare_invoke_after_frame_read`, copies the frame (as reading it
for the resize does) before the bare invoke. It shows how much slower invoke
runs once the frame has pushed model weights out of the CPU caches, a cost
any code that reads the frame pays.

The frames cycle, so `predict()` above reads a frame that left the caches
rounds ago. A camera or decoder instead writes each frame just before it is
used. The fourth path, `predict_after_frame_write`, therefore writes the frame
into a buffer and then calls `predict()` on it, and `fresh_frame_overhead_ms`
compares it with the third path, which starts from the same state.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_sdk.runtime.model import Model
from edge_sdk.runtime.preprocess import preprocess

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TimingStats:
    """Summary of a list of durations, in milliseconds."""

    median_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, durations_ms: Sequence[float]) -> TimingStats:
        values = np.asarray(durations_ms, dtype=np.float64)
        return cls(
            median_ms=float(np.median(values)),
            p99_ms=float(np.percentile(values, 99)),
            mean_ms=float(values.mean()),
            min_ms=float(values.min()),
            max_ms=float(values.max()),
        )


@dataclass(frozen=True, slots=True)
class BenchReport:
    """Measurements of `run_benchmark`; `to_dict()` is the JSON that `edge-sdk bench --json` prints."""

    model: str
    backend: str
    num_threads: int | None
    input: dict[str, Any]
    frame_size: tuple[int, int]
    rounds: int
    warmup: int
    fast_path: bool
    bare_invoke: TimingStats
    bare_invoke_after_frame_read: TimingStats
    predict: TimingStats
    predict_after_frame_write: TimingStats
    predict_stages: dict[str, float]
    overhead_ms: float
    overhead_percent: float
    added_work_ms: float
    added_work_percent: float
    fresh_frame_overhead_ms: float
    fresh_frame_overhead_percent: float
    machine: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["frame_size"] = list(self.frame_size)
        return data


def run_benchmark(model: Model, frames: Sequence[np.ndarray], *, rounds: int = 200, warmup: int = 20) -> BenchReport:
    """Time bare invoke and `predict()` alternately for `rounds` rounds after `warmup` untimed ones."""
    if not frames:
        raise ValueError("no frames to benchmark: give at least one image")
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds={rounds}, warmup={warmup}: rounds must be positive and warmup not negative")
    interpreter = model.interpreter
    load_before = _load_average()
    tensors = [preprocess(frame, model.input_spec)[0] for frame in frames]
    bare_ms: list[float] = []
    predict_ms: list[float] = []
    added_ms: list[float] = []
    bare_after_read_ms: list[float] = []
    predict_after_write_ms: list[float] = []
    scratch = [np.empty_like(frame) for frame in frames]
    stages: dict[str, list[float]] = {"preprocess": [], "invoke": [], "postprocess": []}

    for round_index in range(warmup + rounds):
        position = round_index % len(frames)
        start = time.perf_counter()
        interpreter.set_tensor(model.input_index, tensors[position])
        interpreter.invoke()
        middle = time.perf_counter()
        result = model.predict(frames[position])
        end = time.perf_counter()
        # The bare path once more, right after reading the whole frame as preprocessing does.
        np.copyto(scratch[position], frames[position])
        touched = time.perf_counter()
        interpreter.set_tensor(model.input_index, tensors[position])
        interpreter.invoke()
        after_touch = time.perf_counter()
        # predict() on a frame written just before, as a decoder leaves it.
        np.copyto(scratch[position], frames[position])
        written = time.perf_counter()
        model.predict(scratch[position])
        after_write = time.perf_counter()
        if round_index < warmup:
            continue
        predict_after_write_ms.append((after_write - written) * 1e3)
        bare_ms.append((middle - start) * 1e3)
        bare_after_read_ms.append((after_touch - touched) * 1e3)
        predict_ms.append((end - middle) * 1e3)
        added_ms.append((end - middle) * 1e3 - result.invoke_ms)
        stages["preprocess"].append(result.preprocess_ms)
        stages["invoke"].append(result.invoke_ms)
        stages["postprocess"].append(result.postprocess_ms)

    bare = TimingStats.of(bare_ms)
    predicted = TimingStats.of(predict_ms)
    overhead = predicted.median_ms - bare.median_ms
    added_work = float(np.median(added_ms))
    bare_after_read = TimingStats.of(bare_after_read_ms)
    predict_after_write = TimingStats.of(predict_after_write_ms)
    fresh_overhead = predict_after_write.median_ms - bare_after_read.median_ms
    spec = model.input_spec
    return BenchReport(
        model=str(model.model_path),
        backend=model.backend,
        num_threads=model.num_threads,
        input={"shape": list(spec.shape), "dtype": spec.dtype, "resize": spec.resize, "color_order": spec.color_order},
        frame_size=(int(frames[0].shape[1]), int(frames[0].shape[0])),
        rounds=rounds,
        warmup=warmup,
        fast_path=model.feeds_pixels_directly,
        bare_invoke=bare,
        bare_invoke_after_frame_read=bare_after_read,
        predict=predicted,
        predict_after_frame_write=predict_after_write,
        predict_stages={name: float(np.median(values)) for name, values in stages.items()},
        overhead_ms=overhead,
        overhead_percent=_percent(overhead, bare.median_ms),
        added_work_ms=added_work,
        added_work_percent=_percent(added_work, bare.median_ms),
        fresh_frame_overhead_ms=fresh_overhead,
        fresh_frame_overhead_percent=_percent(fresh_overhead, bare_after_read.median_ms),
        machine={
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min": [load_before, _load_average()],  # before and after the run
        },
    )


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else float("nan")


def _load_average() -> float | None:
    """Return the 1-minute load average, or None where the OS has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
