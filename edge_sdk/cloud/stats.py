"""Percentiles for the telemetry summary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Return the q-th percentile (0-100) of ascending values by linear interpolation, or None when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q / 100.0
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(sorted_values[lower])
    weight = position - lower
    return float(sorted_values[lower]) * (1.0 - weight) + float(sorted_values[upper]) * weight


def percentiles(values: Iterable[float], qs: Iterable[float] = DEFAULT_PERCENTILES) -> dict[str, float | None]:
    """Return {"p50": ..., "p90": ..., ...} of the values, rounded to 0.01; None entries when there are no values."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for q in qs:
        value = percentile(ordered, q)
        result[f"p{q:g}"] = None if value is None else round(value, 2)
    return result
