"""Percentiles for the telemetry summary."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)


def percentiles(values: Iterable[float], qs: Iterable[float] = DEFAULT_PERCENTILES) -> dict[str, float | None]:
    """Return {"p50": ..., "p90": ..., ...} by linear interpolation, rounded to 0.01; None entries when there are no values."""
    quantiles = list(qs)
    for q in quantiles:
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile {q} is outside [0, 100]")
    names = [f"p{q:g}" for q in quantiles]
    samples = np.fromiter(values, dtype=np.float64)
    if samples.size == 0:
        return dict.fromkeys(names)
    return {name: round(float(value), 2) for name, value in zip(names, np.percentile(samples, quantiles))}
