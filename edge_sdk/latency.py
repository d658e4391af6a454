"""A rolling window of durations with percentiles, shared by the transport, the daemon and the MaaS worker."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class LatencyWindow:
    """The last `size` durations, kept in milliseconds. Thread-safe.

    Percentiles interpolate linearly between samples (numpy's default), so
    with few samples p99 lies between the two largest values.
    """

    def __init__(self, size: int = 4096) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add_ms(self, milliseconds: float) -> None:
        with self._lock:
            self._samples.append(float(milliseconds))
            self.count += 1

    def add_seconds(self, seconds: float) -> None:
        self.add_ms(seconds * 1000.0)

    def samples(self) -> list[float]:
        """Return the samples in the window, in milliseconds, oldest first."""
        with self._lock:
            return list(self._samples)

    def percentiles(self, *quantiles: float) -> dict[str, float | None]:
        """Return {"p50": ..., "p95": ...} in milliseconds for quantiles such as 50 and 95; None while empty."""
        return _percentiles(self.samples(), quantiles)

    def summary(self) -> dict[str, float | int | None]:
        """Return the window's count, p50, p95, p99 and max in milliseconds (None while empty), from one snapshot."""
        samples = self.samples()
        summary: dict[str, float | int | None] = {"count": len(samples), **_percentiles(samples, (50, 95, 99))}
        summary["max"] = round(max(samples), 3) if samples else None
        return summary


def _percentiles(samples: list[float], quantiles: tuple[float, ...]) -> dict[str, float | None]:
    names = [f"p{q:g}" for q in quantiles]
    if not samples:
        return dict.fromkeys(names)
    values = np.percentile(np.asarray(samples, dtype=np.float64), quantiles)
    return {name: round(float(value), 3) for name, value in zip(names, values)}
