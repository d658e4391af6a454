"""The live terminal view of a demo run (rich), refreshed from `DemoSnapshot`s.

On a terminal the view redraws in place twice a second. When drawing is off
or the output is not a terminal (CI logs, a pipe), it emits one line of
figures every `LOG_INTERVAL_S` seconds and once at the end. The lines go to a
line sink (the CLI writes them to stderr), or are logged at INFO without one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

REFRESH_S = 0.5
LOG_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class DemoSnapshot:
    """The figures shown at one refresh. Latencies in milliseconds; None means not known yet."""

    elapsed_s: float
    duration_s: float
    frames: int = 0
    fps: float = 0.0
    fps_average: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    inference_ms: float | None = None
    escalations_sent: int = 0
    escalations_answered: int = 0
    escalations_timed_out: int = 0
    spool_depth: int | None = None
    stored: int = 0
    last_label: str = ""
    vehicle: dict[str, Any] = field(default_factory=dict)
    errors: int = 0


def _number(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def vehicle_text(vehicle: dict[str, Any]) -> str:
    """Format a `VehicleLinks.snapshot()` (speed, GPS position, CAN steering angle) for one table cell."""
    if not vehicle:
        return "no vehicle state yet"
    parts = []
    speed = vehicle.get("speed")
    if isinstance(speed, dict) and isinstance(speed.get("value_mps"), (int, float)):
        parts.append(f"speed {speed['value_mps'] * 3.6:.1f} km/h ({speed.get('source', '?')})")
    gps = vehicle.get("gps")
    if isinstance(gps, dict) and isinstance(gps.get("latitude"), (int, float)) and isinstance(gps.get("longitude"), (int, float)):
        parts.append(f"GPS {gps['latitude']:.5f}, {gps['longitude']:.5f}")
    can = vehicle.get("can")
    steering = can.get("steering_angle") if isinstance(can, dict) else None
    if isinstance(steering, dict) and isinstance(steering.get("value"), (int, float)):
        parts.append(f"steering {steering['value']:.1f} deg")
    return ", ".join(parts) or "no vehicle state yet"


def rows(snapshot: DemoSnapshot) -> list[tuple[str, str]]:
    """Return the (name, value) rows shown for a snapshot."""
    if snapshot.elapsed_s <= snapshot.duration_s:
        elapsed = f"{snapshot.elapsed_s:.0f} / {snapshot.duration_s:.0f} s"
    else:
        elapsed = f"{snapshot.duration_s:.0f} s run, {snapshot.elapsed_s - snapshot.duration_s:.0f} s stopping"
    return [
        ("time", elapsed),
        ("frames published", str(snapshot.frames)),
        ("throughput", f"{snapshot.fps:.1f} frames/s now, {snapshot.fps_average:.1f} average"),
        ("capture-to-ack latency", f"p50 {_number(snapshot.latency_p50_ms, ' ms')}, p95 {_number(snapshot.latency_p95_ms, ' ms')}"),
        ("edge inference", _number(snapshot.inference_ms, " ms")),
        ("escalations", f"{snapshot.escalations_sent} sent, {snapshot.escalations_answered} answered, {snapshot.escalations_timed_out} timed out"),
        ("spool depth", "-" if snapshot.spool_depth is None else str(snapshot.spool_depth)),
        ("stored in SQLite", str(snapshot.stored)),
        ("last top class", snapshot.last_label or "-"),
        ("vehicle", vehicle_text(snapshot.vehicle)),
        ("errors", str(snapshot.errors)),
    ]


def line(snapshot: DemoSnapshot) -> str:
    """Return the figures of a snapshot as one log line."""
    return "demo: " + "; ".join(f"{name} {value}" for name, value in rows(snapshot))


class LiveView:
    """Show snapshots from `snapshot_fn` until `stop()`; runs its own thread.

    With `draw` off or a console that is not a terminal, each line goes to
    `line_sink`, or to this module's logger at INFO when `line_sink` is None.
    """

    def __init__(
        self,
        snapshot_fn: Callable[[], DemoSnapshot],
        *,
        console: Any = None,
        title: str = "edge-sdk demo",
        draw: bool = True,
        line_sink: Callable[[str], None] | None = None,
        interval_s: float = LOG_INTERVAL_S,
    ) -> None:
        from rich.console import Console

        self._snapshot_fn = snapshot_fn
        self._console = console or Console(stderr=True)
        self._title = title
        self._draw = draw
        self._line_sink = line_sink
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _table(self, snapshot: DemoSnapshot) -> Any:
        from rich.table import Table

        table = Table(title=self._title, show_header=False, min_width=60)
        table.add_column("what", style="bold")
        table.add_column("value")
        for name, value in rows(snapshot):
            table.add_row(name, value)
        return table

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="demo-view", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if not self._draw or not self._console.is_terminal:
            self._run_lines()
            return
        from rich.live import Live

        with Live(self._table(self._snapshot_fn()), console=self._console, refresh_per_second=4, transient=False) as live:
            while not self._stop.wait(REFRESH_S):
                live.update(self._table(self._snapshot_fn()))
            live.update(self._table(self._snapshot_fn()))

    def _run_lines(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._emit(line(self._snapshot_fn()))
        self._emit(line(self._snapshot_fn()))

    def _emit(self, text: str) -> None:
        if self._line_sink is None:
            logger.info("%s", text)
            return
        try:
            self._line_sink(text)
        except Exception:  # a broken sink (closed pipe) must not end the run
            logger.exception("demo: the progress line sink failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            if self._thread.is_alive():
                logger.warning("the live view thread did not stop within 5 s")
            self._thread = None

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
