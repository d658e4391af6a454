"""LatencyWindow: units, percentiles, the rolling window and the empty case."""

from __future__ import annotations

from edge_sdk.latency import LatencyWindow


def test_latency_seconds_stored_as_ms():
    window = LatencyWindow()
    window.add_seconds(0.25)
    window.add_ms(750.0)

    assert window.samples() == [250.0, 750.0]
    assert window.percentiles(50) == {"p50": 500.0}


def test_latency_summary_of_known_values():
    window = LatencyWindow()
    for value in range(1, 101):
        window.add_ms(float(value))

    summary = window.summary()

    assert summary["count"] == 100
    assert summary["p50"] == 50.5
    assert summary["p99"] == 99.01
    assert summary["max"] == 100.0


def test_latency_window_keeps_last_samples():
    window = LatencyWindow(size=3)
    for value in (1.0, 2.0, 3.0, 4.0):
        window.add_ms(value)

    assert window.samples() == [2.0, 3.0, 4.0]
    assert window.count == 4


def test_latency_empty_summary_is_none():
    summary = LatencyWindow().summary()

    assert summary == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
