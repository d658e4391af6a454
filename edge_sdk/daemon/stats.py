"""Counters and latency percentiles the status record reports."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class LatencyWindow:
    """The last `size` samples of a latency in milliseconds, with percentiles. Thread-safe."""

    def __init__(self, size: int = 2000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, milliseconds: float) -> None:
        with self._lock:
            self._samples.append(float(milliseconds))
            self.count += 1

    def percentiles(self, *quantiles: float) -> dict[str, float | None]:
        """Return {"p50": ..., "p95": ...} for quantiles such as 50 and 95; None before the first sample."""
        with self._lock:
            samples = np.fromiter(self._samples, dtype=np.float64)
        names = [f"p{q:g}" for q in quantiles]
        if samples.size == 0:
            return dict.fromkeys(names)
        values = np.percentile(samples, quantiles)
        return {name: round(float(value), 3) for name, value in zip(names, values)}

    def samples(self) -> list[float]:
        with self._lock:
            return list(self._samples)


class Counters:
    """Named integer counters. Thread-safe."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
