"""Small helpers for transport statistics and log rate limiting."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any


class LatencyWindow:
    """The last `size` durations in seconds, summarized as milliseconds percentiles."""

    def __init__(self, size: int = 4096) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def summary_ms(self) -> dict[str, float | int | None]:
        """Return count, p50, p95, p99 and max in milliseconds (None while empty)."""
        with self._lock:
            values = sorted(self._values)
        if not values:
            return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}

        def pick(fraction: float) -> float:
            return round(values[min(len(values) - 1, int(fraction * len(values)))] * 1000.0, 3)

        return {"count": len(values), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(values[-1] * 1000.0, 3)}


class RateLimitedLog:
    """Log the first occurrence of a repeated failure, then every `every`-th, with the repeat count."""

    def __init__(self, logger: logging.Logger, every: int = 10) -> None:
        self._logger = logger
        self._every = every
        self._count = 0
        self._lock = threading.Lock()

    def _should_log(self) -> tuple[bool, int]:
        with self._lock:
            self._count += 1
            return self._count == 1 or self._count % self._every == 0, self._count

    def warning(self, message: str, *args: Any) -> None:
        emit, count = self._should_log()
        if emit:
            self._logger.warning(message + " [occurrence %d]", *args, count)

    def error(self, message: str, *args: Any) -> None:
        emit, count = self._should_log()
        if emit:
            self._logger.error(message + " [occurrence %d]", *args, count)
