"""The end-of-run summary printed on the terminal (rich), pointing at the report files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.demo.report import REPORT_HTML, REPORT_JSON, DemoReport


def _percentiles(values: dict[str, float | None]) -> str:
    known = [f"{key} {value:.1f} ms" for key, value in values.items() if value is not None]
    return ", ".join(known) or "no data"


def print_summary(report: DemoReport, out_dir: Path, console: Any = None) -> None:
    """Print the run's figures, its errors and where the report and per-part commands are."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="edge-sdk demo: summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    verdict = "[green]passed[/green]" if report.passed else "[red]FAILED[/red]"
    rows = [
        ("result", verdict),
        ("frames processed", str(report.frames_processed)),
        ("frame results stored in SQLite", f"{report.frames_stored} of {report.frames_processed} frames processed ({report.database})"),
        ("all results stored (frames, cloud answers, summaries)", str(report.results_stored)),
        (
            "escalations on the vehicle",
            f"{report.escalations_sent} sent, {report.escalations_answered} answered, {report.escalations_timed_out} timed out, {report.answer_errors} error answers",
        ),
        ("capture-to-storage latency", _percentiles(report.latency_ms)),
        ("edge inference", _percentiles(report.inference_ms)),
        ("cloud round trip", _percentiles(report.cloud_rtt_ms)),
        ("results per top class", ", ".join(f"{label} {count}" for label, count in report.labels.items()) or "none"),
        ("errors", str(len(report.errors))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for error in report.errors[:20]:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
    console.print(f"report: {out_dir / REPORT_HTML} (figures and the command of each part), {out_dir / REPORT_JSON}")
