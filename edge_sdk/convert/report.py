"""The conversion report: every candidate's size, speed and accuracy, the target checks and the outcome.

`ConversionReport.to_dict()` is the `--json` form for pipelines, and
`render_report()` prints the same facts as tables for a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge_sdk.convert.evaluate import Evaluation

REPORT_SCHEMA = "edge-sdk-convert-report/1"
# Console width for a file or CI log, where rich would assume 80 columns. Longer lines, such as warnings, wrap.
NON_TERMINAL_WIDTH = 160
# Headers are split over two lines, because cells never wrap and a one-line header would widen its column.
UNLIMITED_WIDTH = 10_000
CANDIDATE_COLUMNS = ("mode", "size\nKiB", "invoke\nms", "float\ntop-1", "quant\ntop-1", "agree-\nment", "drop\npts", "mean\n|diff|", "gate")


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """One quantization mode as converted, checked, measured and judged by the accuracy gate."""

    mode: str
    strategy: str | None = None
    size_bytes: int | None = None
    input_dtype: str | None = None
    output_dtype: str | None = None
    median_invoke_ms: float | None = None
    evaluation: Evaluation | None = None
    sample_check: dict[str, Any] | None = None
    weight_dtypes: dict[str, int] = field(default_factory=dict)
    op_counts: dict[str, int] = field(default_factory=dict)
    passed_gate: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.evaluation is not None:
            data["evaluation"]["accuracy_drop_points"] = round(self.evaluation.accuracy_drop_points, 3)
        return data


@dataclass
class ConversionReport:
    """Everything `edge-sdk convert` learned; written as JSON whether or not a package was written."""

    model: str
    target: str
    requested_mode: str
    max_accuracy_drop: float
    evaluation_set: str | None = None
    evaluation_kind: str | None = None  # "validation" (labelled) or "calibration" (agreement only)
    calibration: dict[str, Any] | None = None
    batch_pinned: bool = False
    candidates: list[CandidateResult] = field(default_factory=list)
    chosen_mode: str | None = None
    edgetpu: dict[str, Any] | None = None
    compiler: dict[str, Any] | None = None
    package: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    # Warnings that already went to the log, so the terminal view does not print them twice.
    logged_warnings: set[str] = field(default_factory=set, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.package is not None and self.error is None

    def candidate(self, mode: str) -> CandidateResult | None:
        return next((c for c in self.candidates if c.mode == mode), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "model": self.model,
            "target": self.target,
            "requested_mode": self.requested_mode,
            "chosen_mode": self.chosen_mode,
            "max_accuracy_drop": self.max_accuracy_drop,
            "evaluation_set": self.evaluation_set,
            "evaluation_kind": self.evaluation_kind,
            "calibration": self.calibration,
            "batch_pinned": self.batch_pinned,
            "candidates": [c.to_dict() for c in self.candidates],
            "edgetpu": self.edgetpu,
            "compiler": self.compiler,
            "package": self.package,
            "succeeded": self.succeeded,
            "warnings": list(self.warnings),
            "error": self.error,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}%"


def make_console(stream: TextIO | None = None) -> Any:
    """Return a rich console for the report, `NON_TERMINAL_WIDTH` columns wide when output is not a terminal.

    Rich assumes 80 columns for a file or a CI log, which cut numbers short. A
    COLUMNS value set by the user is kept.
    """
    from rich.console import Console

    stream = stream or sys.stdout
    is_terminal = hasattr(stream, "isatty") and stream.isatty()
    if is_terminal or os.environ.get("COLUMNS"):
        return Console(file=stream)
    return Console(file=stream, width=NON_TERMINAL_WIDTH)


def render_report(report: ConversionReport, console: Any = None, show_error: bool = True) -> None:
    """Print the candidate table, Edge TPU fallbacks, warnings and the outcome with rich.

    Candidate errors are printed in full below the table, so the table holds
    only short cells. `show_error` False leaves out the final error line, for
    a caller that prints the error itself.
    """
    from rich.markup import escape
    from rich.table import Table

    console = console or make_console()
    table = Table(title=f"{report.model} -> {report.target} (quantize {report.requested_mode}, max drop {report.max_accuracy_drop} points)")
    for column in CANDIDATE_COLUMNS:
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=True)
    for candidate in report.candidates:
        table.add_row(*_candidate_row(candidate, report.chosen_mode))
    _print_wide(console, table)
    for candidate in report.candidates:
        for note in _candidate_notes(candidate):
            console.print(f"{escape(candidate.mode)}: {escape(note)}")

    if report.edgetpu:
        _render_edgetpu(report.edgetpu, console)
    if report.compiler:
        compiler = report.compiler
        if compiler.get("compiled"):
            console.print(f"edgetpu_compiler {compiler.get('version')}: {compiler.get('edgetpu_ops')} ops on the Edge TPU, {compiler.get('cpu_ops')} on the CPU")
        else:
            console.print(f"[yellow]{escape(str(compiler.get('hint')))}[/yellow]")
    for warning in (w for w in report.warnings if w not in report.logged_warnings):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if report.succeeded:
        console.print(f"[green]wrote package {escape(str(report.package))} ({report.chosen_mode})[/green]")
    elif report.error and show_error:
        console.print(f"[red]no package written: {escape(report.error)}[/red]")


def _print_wide(console: Any, table: Any) -> None:
    """Print a table of no_wrap columns at its full width, so no number is cut, even if lines exceed the console."""
    from rich.measure import Measurement

    # Measurement.get clamps to the options' max_width, so it measures against an unlimited width.
    unlimited = console.options.update_width(UNLIMITED_WIDTH)
    needed = Measurement.get(console, unlimited, table).maximum
    if needed <= console.width:
        console.print(table)
        return
    # Console.print caps its width argument at the console width, so the console itself is widened.
    width = console.width
    console.width = needed
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def _candidate_row(candidate: CandidateResult, chosen: str | None) -> list[str]:
    mark = " *" if candidate.mode == chosen else ""
    if candidate.error and candidate.evaluation is None:
        return [candidate.mode + mark, "-", "-", "-", "-", "-", "-", "-", "error"]
    evaluation = candidate.evaluation
    size = "-" if candidate.size_bytes is None else f"{candidate.size_bytes / 1024:.1f}"
    invoke = "-" if candidate.median_invoke_ms is None else f"{candidate.median_invoke_ms:.3f}"
    if evaluation is None:
        return [candidate.mode + mark, size, invoke, "-", "-", "-", "-", "-", "pass" if candidate.passed_gate else "fail"]
    diff = ", ".join(f"{d:.4f}" for d in evaluation.mean_abs_diff)
    return [
        candidate.mode + mark,
        size,
        invoke,
        _percent(evaluation.float_top1),
        _percent(evaluation.quantized_top1),
        _percent(evaluation.top1_agreement),
        f"{evaluation.accuracy_drop_points:.2f}",
        diff,
        "pass" if candidate.passed_gate else "fail",
    ]


def _candidate_notes(candidate: CandidateResult) -> list[str]:
    """Return the long texts of a candidate that do not fit in a table cell: its error and collapsed outputs."""
    notes = []
    if candidate.error:
        notes.append(f"error: {candidate.error}")
    if candidate.evaluation is not None and candidate.evaluation.constant_outputs:
        notes.append(f"output(s) {list(candidate.evaluation.constant_outputs)} collapsed to a constant after quantization")
    return notes


def _render_edgetpu(edgetpu: dict[str, Any], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(f"Edge TPU check: {edgetpu['edgetpu_ops']} ops map to the Edge TPU, {edgetpu['cpu_ops']} fall back to the CPU")
    if not edgetpu["fallbacks"]:
        return
    if edgetpu.get("cut_at") is not None:
        console.print(f"the compiler would cut the graph at op {edgetpu['cut_at']}: that op and all later ops run on the CPU")
    table = Table(title="ops that fall back to the CPU")
    for column in ("position", "op", "version"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason")
    for fallback in edgetpu["fallbacks"]:
        table.add_row(str(fallback["position"]), fallback["op"], str(fallback["version"]), escape(fallback["reason"]))
    # The reason column wraps first, so the short columns keep their width on any console wider than about 50.
    console.print(table)
