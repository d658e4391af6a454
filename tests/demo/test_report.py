"""The demo report's arithmetic and charts, on hand-made series."""

from __future__ import annotations

import xml.dom.minidom

import pytest

from edge_sdk.demo.plots import bar_svg, histogram_svg, line_svg
from edge_sdk.cloud.storage import SqliteStorage
from edge_sdk.demo.report import DemoReport, ResultSeries, build_report, is_edge_frame, render_html, throughput


def _report(**changes):
    values = dict(
        started_at=1_800_000_000.0, duration_s=10.0, broker="b", source="s", edge_model="e", cloud_model="c", database="d",
        frames_processed=10, frames_stored=10, results_stored=12, escalations_sent=2, escalations_answered=2, answer_errors=0,
        escalations_timed_out=0, dead_letters=0, labels={"stop": 4}, latency_ms={"p50": 3.0}, inference_ms={}, cloud_rtt_ms={},
    )
    values.update(changes)
    return DemoReport(**values)


def test_throughput_bins_per_second():
    xs, ys = throughput([100.0, 100.2, 100.9, 101.1, 103.5])
    assert xs == [0.0, 1.0, 2.0, 3.0]
    assert ys == [3.0, 1.0, 0.0, 1.0]


def test_throughput_empty():
    assert throughput([]) == ([], [])


@pytest.mark.parametrize(
    ("changes", "passed"),
    [({}, True), ({"errors": ("x: failed",)}, False), ({"escalations_answered": 0}, False), ({"frames_stored": 0}, False),
     ({"dead_letters": 1}, False), ({"answer_errors": 1}, False)],
)
def test_report_passed_rule(changes, passed):
    assert _report(**changes).passed is passed


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"type": "frame", "source": "edge"}, True), ({"type": "frame", "source": "cloud"}, False), ({"type": "summary"}, False)],
)
def test_edge_frame_filter(body, expected):
    assert is_edge_frame(body) is expected


def test_charts_are_valid_svg():
    charts = [
        histogram_svg([1.0, 2.0, 2.5, 9.0], "latency", "ms", bins=4),
        line_svg([0.0, 1.0, 2.0], [3.0, 5.0, 4.0], "throughput", "s", "results/s"),
        bar_svg(["stop", "yield"], [4, 2], "classes", "frames"),
        histogram_svg([], "empty", "ms"),
    ]
    for chart in charts:
        document = xml.dom.minidom.parseString(chart)
        assert document.documentElement.tagName == "svg"
    assert xml.dom.minidom.parseString(charts[0]).getElementsByTagName("rect").length == 4


def test_html_escapes_errors():
    html = render_html(_report(errors=("<script>",)), ResultSeries((1.0, 2.0), (3.0, 4.0), ("stop", "stop")))
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    assert html.count("<svg ") == 3


def test_report_takes_escalations_from_vehicle(tmp_path):
    vehicle_stats = {"sent": 4, "answered": 0, "errors": 0, "timed_out": 4, "pending": 0}
    with SqliteStorage(tmp_path / "t.sqlite") as storage:
        report, _ = build_report(storage, "car", started_at=1_800_000_000.0, frames_processed=10, escalation_stats=vehicle_stats, context={})
    assert report.escalations_sent == 4
    assert report.escalations_answered == 0
    assert report.escalations_timed_out == 4
    assert report.passed is False
    assert report.extra["escalations_stored"] == {"requests": 0, "answered": 0, "error_replies": 0}


def test_html_shows_timed_out_escalations():
    html = render_html(_report(escalations_sent=5, escalations_answered=2, escalations_timed_out=3), ResultSeries((), (), ()))
    assert "timed out" in html
    assert "5 / 2 / 0 / 3" in html
