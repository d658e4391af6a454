"""The demo's end report, built from what the ingest subscriber stored in SQLite and the vehicle's own counters.

Frame results, labels and latencies count what went the whole way: captured,
inferred, published, acknowledged by the broker and stored by the subscriber.
Escalation figures come from the daemon's escalation counters, because only
the vehicle can tell whether a cloud reply arrived before its timeout. The report
is written as `report.json` (machine-readable, used by the tests) and
`report.html` (summary, three SVG charts and the commands that run each part
on its own).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from edge_sdk.cloud.records import KIND_REPLY, KIND_ESCALATION, KIND_RESULT, MessageQuery
from edge_sdk.cloud.reports import summarize
from edge_sdk.cloud.stats import percentiles
from edge_sdk.cloud.storage import Storage
from edge_sdk.demo.plots import bar_svg, histogram_svg, line_svg

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


@dataclass(frozen=True, slots=True)
class PartCommand:
    """A shell command that runs one part of the demo on its own."""

    part: str
    command: str


@dataclass(frozen=True, slots=True)
class ResultSeries:
    """Per-result values read back from storage, in sender-time order."""

    t_wall: tuple[float, ...]
    latency_ms: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DemoReport:
    """Outcome of a demo run. `passed` is the check that the demo tests and the exit status rely on.

    `escalations_sent`, `escalations_answered` and `escalations_timed_out` are
    the vehicle's counters: requests published, replies received in time, and
    requests that got no reply in time. `answer_errors` counts error replies.
    """

    started_at: float
    duration_s: float
    broker: str
    source: str
    edge_model: str
    cloud_model: str
    database: str
    frames_processed: int
    frames_stored: int
    results_stored: int
    escalations_sent: int
    escalations_answered: int
    answer_errors: int
    escalations_timed_out: int
    dead_letters: int
    labels: dict[str, int]
    latency_ms: dict[str, float | None]
    inference_ms: dict[str, float | None]
    cloud_rtt_ms: dict[str, float | None]
    errors: tuple[str, ...] = ()
    commands: tuple[PartCommand, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        stored_cleanly = self.dead_letters == 0 and self.answer_errors == 0
        return self.frames_processed > 0 and self.frames_stored > 0 and self.escalations_answered > 0 and stored_cleanly and not self.errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


def is_edge_frame(body: Mapping[str, Any]) -> bool:
    """Tell whether a result body is the daemon's per-frame edge result (not a cloud result or a summary)."""
    return body.get("type", "frame") == "frame" and body.get("source", "edge") == "edge"


def read_series(storage: Storage, vehicle_id: str) -> ResultSeries:
    """Read every stored edge frame result of a vehicle: its time, capture-to-storage latency and top label."""
    times, latencies, labels = [], [], []
    for message in storage.query(MessageQuery(vehicle_id=vehicle_id, kind=KIND_RESULT)):
        if not is_edge_frame(message.body):
            continue
        times.append(message.t_wall)
        latencies.append((message.received_at - _capture_time(message.body, message.t_wall)) * 1000.0)
        labels.append(message.label or "none")
    return ResultSeries(tuple(times), tuple(latencies), tuple(labels))


def _capture_time(body: Mapping[str, Any], default: float) -> float:
    """Return the frame's wall-clock capture time from a result body, or `default` when the body has none."""
    for key in ("frame", "capture"):
        member = body.get(key)
        if isinstance(member, Mapping) and isinstance(member.get("t_wall"), (int, float)):
            return float(member["t_wall"])
    value = body.get("capture_time")
    return float(value) if isinstance(value, (int, float)) else default


def count_escalations(storage: Storage, vehicle_id: str) -> tuple[int, int, int]:
    """Return (requests stored, stored requests with a stored successful reply, stored error replies).

    These are the cloud side's view. A reply stored here may still have
    reached the vehicle after its timeout, so the pass rule uses the vehicle's
    counters instead (`vehicle_escalations`).
    """
    sent = {m.details.get("correlation_id") for m in storage.query(MessageQuery(vehicle_id=vehicle_id, kind=KIND_ESCALATION))}
    answered: set[Any] = set()
    errors = 0
    for message in storage.query(MessageQuery(vehicle_id=vehicle_id, kind=KIND_REPLY)):
        if message.details.get("error"):
            errors += 1
        else:
            answered.add(message.details.get("correlation_id"))
    sent.discard(None)
    return len(sent), len(sent & answered), errors


def vehicle_escalations(stats: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Return (sent, answered, error replies, timed out) from the daemon's escalation stats (`Escalator.stats()`)."""
    return tuple(int(stats.get(key, 0) or 0) for key in ("sent", "answered", "errors", "timed_out"))  # type: ignore[return-value]


def build_report(
    storage: Storage,
    vehicle_id: str,
    *,
    started_at: float,
    frames_processed: int,
    escalation_stats: Mapping[str, Any],
    context: Mapping[str, str],
    errors: Sequence[str] = (),
    commands: Sequence[PartCommand] = (),
    extra: Mapping[str, Any] | None = None,
) -> tuple[DemoReport, ResultSeries]:
    """Summarize a run from storage and the vehicle's escalation stats; `context` names the broker, source, models and database."""
    series = read_series(storage, vehicle_id)
    summaries = summarize(storage, vehicle_id=vehicle_id)
    summary = summaries[0] if summaries else None
    sent, answered, vehicle_errors, timed_out = vehicle_escalations(escalation_stats)
    stored_sent, stored_answered, stored_errors = count_escalations(storage, vehicle_id)
    extra = {**(extra or {}), "escalations_stored": {"requests": stored_sent, "answered": stored_answered, "error_replies": stored_errors}}
    report = DemoReport(
        started_at=started_at,
        duration_s=round(time.time() - started_at, 2),
        broker=context.get("broker", ""),
        source=context.get("source", ""),
        edge_model=context.get("edge_model", ""),
        cloud_model=context.get("cloud_model", ""),
        database=context.get("database", ""),
        frames_processed=frames_processed,
        frames_stored=len(series.t_wall),
        results_stored=storage.count(KIND_RESULT, vehicle_id),
        escalations_sent=sent,
        escalations_answered=answered,
        answer_errors=max(vehicle_errors, stored_errors),
        escalations_timed_out=timed_out,
        dead_letters=len(storage.dead_letters()),
        labels=dict(Counter(series.labels).most_common()),
        latency_ms=percentiles(series.latency_ms),
        inference_ms=dict(summary.inference_ms) if summary else {},
        cloud_rtt_ms=dict(summary.cloud_rtt_ms) if summary else {},
        errors=tuple(errors),
        commands=tuple(commands),
        extra=extra,
    )
    return report, series


def throughput(times: Sequence[float], bin_s: float = 1.0) -> tuple[list[float], list[float]]:
    """Return (seconds since the first result, results per second) in bins of `bin_s` seconds."""
    if not times:
        return [], []
    start = min(times)
    counts = Counter(int((t - start) // bin_s) for t in times)
    last = max(counts)
    xs = [index * bin_s for index in range(last + 1)]
    ys = [counts.get(index, 0) / bin_s for index in range(last + 1)]
    return xs, ys


def write_report(report: DemoReport, series: ResultSeries, folder: str | Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `folder`; return both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / REPORT_JSON
    json_path.write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path = folder / REPORT_HTML
    html_path.write_text(render_html(report, series), encoding="utf-8")
    logger.info("wrote demo report %s and %s", json_path, html_path)
    return json_path, html_path


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>"


def _format_percentiles(values: Mapping[str, float | None]) -> str:
    known = [f"{key} {value:.1f}" for key, value in values.items() if value is not None]
    return ", ".join(known) or "no data"


def render_html(report: DemoReport, series: ResultSeries) -> str:
    """Return the report page: summary table, charts, errors and per-part commands."""
    xs, ys = throughput(series.t_wall)
    label_counts = Counter(series.labels)
    labels = sorted(label_counts)
    rows = [
        _row("result", "passed" if report.passed else "FAILED"),
        _row("duration (s)", report.duration_s),
        _row("broker", report.broker),
        _row("source", report.source),
        _row("edge model", report.edge_model),
        _row("cloud model", report.cloud_model),
        _row("telemetry database", report.database),
        _row("frames processed", report.frames_processed),
        _row("frame results stored in SQLite (of frames processed)", f"{report.frames_stored} of {report.frames_processed}"),
        _row("results stored in SQLite (frames, cloud answers, summaries)", report.results_stored),
        _row(
            "escalations on the vehicle: sent / answered / error answers / timed out",
            f"{report.escalations_sent} / {report.escalations_answered} / {report.answer_errors} / {report.escalations_timed_out}",
        ),
        _row("dead letters", report.dead_letters),
        _row("capture-to-storage latency (ms)", _format_percentiles(report.latency_ms)),
        _row("edge inference (ms)", _format_percentiles(report.inference_ms)),
        _row("cloud round trip (ms)", _format_percentiles(report.cloud_rtt_ms)),
    ]
    rows.extend(_row(key, value) for key, value in sorted(report.extra.items()))
    errors = "".join(f"<li>{escape(error)}</li>" for error in report.errors) or "<li>none</li>"
    commands = "".join(f"<h3>{escape(c.part)}</h3><pre>{escape(c.command)}</pre>" for c in report.commands)
    charts = [
        histogram_svg(series.latency_ms, "Capture-to-storage latency per result", "latency (ms)"),
        line_svg(xs, ys, "Throughput: results stored per second", "time since first result (s)", "results/s"),
        bar_svg(labels, [label_counts[label] for label in labels], "Results per top class", "frames"),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"><title>edge-sdk demo report</title>',
            "<style>body{font-family:sans-serif;margin:2em;max-width:1200px} th{text-align:left;padding-right:1em}"
            " pre{background:#f4f4f4;padding:0.6em;white-space:pre-wrap} svg{margin:0.5em;border:1px solid #ddd}</style>",
            "</head><body>",
            f"<h1>edge-sdk demo report ({escape(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(report.started_at)))})</h1>",
            "<table>" + "".join(rows) + "</table>",
            "<h2>Charts</h2>",
            "".join(charts),
            "<h2>Errors</h2><ul>" + errors + "</ul>",
            "<h2>Run each part on its own</h2>",
            commands,
            "</body></html>",
        ]
    )
