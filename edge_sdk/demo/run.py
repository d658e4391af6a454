"""`edge-sdk demo`: the whole system in one process, on a machine with nothing but the package.

Parts, each started from the SDK's own classes and stopped in reverse order:

1. an MQTT broker: the embedded amqtt broker on 127.0.0.1 (MQTT 3.1.1), or
   the external broker given with `--broker URL`;
2. a telemetry ingest subscriber (`IngestSubscriber`) writing SQLite;
3. a MaaS worker (`MaasWorker`) answering escalated frames with the larger
   float sign model;
4. the vehicle simulator serving synthetic GPS, CAN and MCU frames over
   pseudo-terminals, when it can be imported;
5. the daemon (`Daemon`) on the rendered road clip with the small int8 sign
   model, escalating frames whose top score is below a threshold;
6. a monitor subscriber feeding the live terminal view.

Everything the run writes goes to the output folder: the clip, the vehicle
logs, `vehicle.yaml`, the SQLite database, the spool and the report.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.demo.broker import BROKER_THREAD_NAME, DEMO_USERNAME, EmbeddedBroker
from edge_sdk.demo.config import PartFiles, daemon_config_data, part_commands, write_vehicle_yaml
from edge_sdk.demo.render import DriveSchedule, render_clip
from edge_sdk.demo.report import DemoReport, build_report, write_report
from edge_sdk.demo.vehicle_logs import VehicleLogs, write_vehicle_logs
from edge_sdk.errors import EdgeSdkError

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
EDGE_PACKAGE = ASSETS / "edge"
CLOUD_PACKAGE = ASSETS / "cloud"
CLIP_SECONDS = 24.0
CONNECT_TIMEOUT_S = 15.0
BROKER_PROBE_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 20.0
DAEMON_JOIN_S = 30.0


class DemoError(EdgeSdkError, RuntimeError):
    """A part of the demo failed to start; the message names the part and what to do."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Options of one demo run. A path left as None means the built-in clip or model."""

    duration_s: float = 30.0
    out_dir: Path = Path("edge-sdk-demo")
    source: Path | None = None
    model: Path | None = None
    labels: Path | None = None
    label_offset: int = 0
    cloud_model: Path | None = None
    broker_url: str | None = None
    vehicle_id: str = "demo-car"
    prefix: str = "demo"
    escalate_below: float = 0.8
    live: bool = True
    vehicle: bool = True
    progress: Callable[[str], None] | None = None


class _ErrorCollector(logging.Handler):
    """Keeps every ERROR record of edge-sdk, firmware_bridge and the embedded broker during the run, for the report's error list."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio logs for every event loop in the process, but only the broker's loop belongs to the demo.
        if record.name.startswith("asyncio") and record.threadName != BROKER_THREAD_NAME:
            return
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.messages.append(f"{record.name}: {message}")


@contextlib.contextmanager
def _collect_errors() -> Iterator[_ErrorCollector]:
    # The demo is an application, so it may watch the library's loggers; the
    # handler is removed again when the run ends.
    collector = _ErrorCollector()
    watched = [logging.getLogger(name) for name in ("edge_sdk", "firmware_bridge", "amqtt", "asyncio")]
    for watched_logger in watched:
        watched_logger.addHandler(collector)
    try:
        yield collector
    finally:
        for watched_logger in watched:
            watched_logger.removeHandler(collector)


def load_vehicle_sim() -> Any:
    """Return the `VehicleSim` class from firmware_bridge."""
    from firmware_bridge.simulator import VehicleSim

    return VehicleSim


def _fresh_output(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("telemetry.sqlite", "spool.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(out_dir / "vehicle" / "links", ignore_errors=True)


def prepare_files(options: DemoOptions) -> PartFiles:
    """Write the clip (unless `--source`), the vehicle logs and the part-by-part config into the output folder."""
    out_dir = options.out_dir.resolve()
    _fresh_output(out_dir)
    schedule = DriveSchedule()
    source = options.source.resolve() if options.source else render_clip(out_dir / "road.mp4", seconds=CLIP_SECONDS, schedule=schedule).path
    logs = write_vehicle_logs(out_dir / "vehicle", seconds=options.duration_s + 120.0, speed_mps=schedule.speed_mps)
    files = PartFiles(
        out_dir=out_dir,
        source=source,
        edge_model=(options.model or EDGE_PACKAGE).resolve(),
        labels=options.labels.resolve() if options.labels else None,
        label_offset=options.label_offset,
        cloud_model=(options.cloud_model or CLOUD_PACKAGE).resolve(),
        database=out_dir / "telemetry.sqlite",
        spool=out_dir / "spool.sqlite",
        logs=logs,
        loop_source=options.source is None,
    )
    for what, path in (("source video", files.source), ("edge model", files.edge_model), ("cloud model", files.cloud_model), ("labels file", files.labels)):
        if path is not None and not path.exists():
            raise DemoError(f"{what} {path} not found: pass an existing path or leave the option out to use the built-in one")
    write_vehicle_yaml(files, options.vehicle_id, options.prefix, options.escalate_below)
    return files


def check_models(options: DemoOptions) -> Any:
    """Load both models before anything is written or started, so a wrong file fails with its path.

    Returns the loaded cloud model for the MaaS worker, which the caller must close.
    The edge model is closed again because the daemon loads its own from the config.
    """
    from edge_sdk.cloud.inference import load_cloud_model
    from edge_sdk.runtime import Model

    edge_model = (options.model or EDGE_PACKAGE).resolve()
    cloud_model = (options.cloud_model or CLOUD_PACKAGE).resolve()
    label_offset = options.label_offset if options.labels is not None else None
    try:
        Model.load(edge_model, labels=options.labels, label_offset=label_offset).close()
    except Exception as exc:  # any load failure means the same to the user: this file cannot be the edge model
        raise DemoError(f"edge model {edge_model} failed to load: {exc}. Pass a model package, package archive or .tflite file with --model") from exc
    try:
        return load_cloud_model(cloud_model)
    except Exception as exc:  # same for the cloud model
        raise DemoError(
            f"cloud model {cloud_model} failed to load: {exc}. Pass a TFLite package, .keras file or SavedModel folder with --cloud-model"
        ) from exc


def check_broker_reachable(url: str, timeout_s: float = BROKER_PROBE_TIMEOUT_S) -> None:
    """Open and close one TCP connection to the broker of `url`, and raise DemoError naming the URL when that fails.

    NOTE: this checks only that something accepts TCP connections on the
    port. A wrong protocol, TLS setting or credentials still fail later, when
    the parts connect.
    """
    from edge_sdk.transport.config import MqttConfig

    try:
        config = MqttConfig.from_url(url)
    except EdgeSdkError as exc:
        raise DemoError(f"--broker {url!r} is invalid: {exc}") from exc
    try:
        with socket.create_connection((config.host, config.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise DemoError(
            f"the broker {url} cannot be reached ({exc}): start the broker (for example `mosquitto -p {config.port}`), "
            "fix the host and port in --broker, or leave --broker out to use the embedded broker"
        ) from exc


def _mqtt_base(options: DemoOptions, broker: EmbeddedBroker | None) -> Any:
    from edge_sdk.transport.config import MqttConfig

    if broker is not None:
        return MqttConfig(host=broker.host, port=broker.port, protocol="3.1.1", username=DEMO_USERNAME, client_id="edge-sdk-demo")
    assert options.broker_url is not None
    return MqttConfig.from_url(options.broker_url)


def _plain_maas_config(shared: bool, **values: Any) -> Any:
    """Build a MaasConfig; without shared subscriptions (amqtt) the worker subscribes to the plain filter."""
    from edge_sdk.cloud.maas import MaasConfig
    from edge_sdk.transport.topics import MessageKind, fleet_filter

    if shared:
        return MaasConfig(**values)

    class PlainMaasConfig(MaasConfig):
        __slots__ = ()

        @property
        def request_filter(self) -> str:
            return fleet_filter(self.prefix, MessageKind.ESCALATIONS)

    return PlainMaasConfig(**values)


class DemoRun:
    """One run of the demo; `run()` returns the report (also written to the output folder)."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.files: PartFiles | None = None
        self.daemon: Any = None
        self._daemon_error: BaseException | None = None
        self._daemon_exit: int | None = None

    def run(self) -> DemoReport:
        started_at = time.time()
        if self.options.broker_url is not None:
            check_broker_reachable(self.options.broker_url)
        if self.options.model is not None and self.options.cloud_model is None:
            logger.warning(
                "demo: --model is given without --cloud-model, so the built-in traffic-sign cloud model answers the escalations "
                "of %s; its answers mean nothing for that model. Pass --cloud-model with a cloud model for the same labels",
                self.options.model,
            )
        cloud_model = check_models(self.options)
        with _collect_errors() as collector, contextlib.ExitStack() as stack:
            stack.callback(cloud_model.close)
            self.files = prepare_files(self.options)
            broker = None
            if self.options.broker_url is None:
                broker = stack.enter_context(EmbeddedBroker())
            base = _mqtt_base(self.options, broker)
            storage, ingest = self._start_ingest(stack, base)
            self._start_worker(stack, base, cloud_model, shared=broker is None)
            vehicle_paths = self._start_vehicle_sim(stack)
            thread = self._start_daemon(base, vehicle_paths)
            monitor = self._start_monitor(stack, base, ingest, collector)
            self._wait(thread)
            frames = self._stop_daemon(thread, ingest)
            errors = list(collector.messages)
            if self._daemon_error is not None:
                errors.append(f"daemon failed: {self._daemon_error}")
            report, series = build_report(
                storage,
                self.options.vehicle_id,
                started_at=started_at,
                frames_processed=frames,
                escalation_stats=self._escalation_stats(),
                context=self._context(broker),
                errors=errors,
                commands=part_commands(self.files, self.options.prefix),
                extra=self._extra(monitor, vehicle_paths, ingest),
            )
            write_report(report, series, self.files.out_dir)
        return report

    # -- parts ----------------------------------------------------------

    def _start_ingest(self, stack: contextlib.ExitStack, base: Any) -> tuple[Any, Any]:
        from edge_sdk.cloud.ingest import IngestConfig, IngestSubscriber
        from edge_sdk.cloud.storage import SqliteStorage

        assert self.files is not None
        storage = stack.enter_context(SqliteStorage(self.files.database))
        ingest = IngestSubscriber(storage, IngestConfig(prefix=self.options.prefix, client_id="edge-sdk-demo-ingest"), base)
        ingest.start(connect_timeout=CONNECT_TIMEOUT_S)
        stack.callback(ingest.stop)
        return storage, ingest

    def _start_worker(self, stack: contextlib.ExitStack, base: Any, model: Any, *, shared: bool) -> Any:
        from edge_sdk.cloud.maas import MaasWorker

        config = _plain_maas_config(shared, worker_id="demo-worker", prefix=self.options.prefix, status_interval_s=2.0)
        worker = MaasWorker(model, base, config)
        worker.start(connect_timeout=CONNECT_TIMEOUT_S)
        stack.callback(worker.stop)
        return worker

    def _start_vehicle_sim(self, stack: contextlib.ExitStack) -> dict[str, str]:
        from firmware_bridge.mcu_protocol import Gear, VehicleState

        if not self.options.vehicle:
            return {}
        vehicle_sim = load_vehicle_sim()
        assert self.files is not None
        speed_kmh = DriveSchedule().speed_mps * 3.6
        sim = vehicle_sim(
            nmea_log=self.files.logs.nmea,
            can_log=self.files.logs.candump,
            mcu=True,
            nmea_interval_s=0.5,
            can_speed=1.0,
            mcu_state=lambda: VehicleState(speed_kmh, 0.0, Gear.DRIVE, 0),
            repeat_nmea=True,
        )
        sim.start()
        stack.callback(sim.stop)
        return dict(sim.paths())

    def _start_daemon(self, base: Any, vehicle_paths: dict[str, str]) -> threading.Thread:
        from edge_sdk.daemon.config import parse_config
        from edge_sdk.daemon.service import Daemon

        assert self.files is not None
        data = daemon_config_data(self.files, self.options.vehicle_id, self.options.prefix, self.options.escalate_below, base, vehicle_paths)
        self.daemon = Daemon(parse_config(data, base_dir=self.files.out_dir))
        thread = threading.Thread(target=self._run_daemon, name="demo-daemon", daemon=True)
        thread.start()
        return thread

    def _run_daemon(self) -> None:
        try:
            self._daemon_exit = self.daemon.run()
        except Exception as exc:  # reported in the demo report and on the terminal
            self._daemon_error = exc
            logger.error("demo: the daemon stopped with an error: %s", exc)

    def _start_monitor(self, stack: contextlib.ExitStack, base: Any, ingest: Any, collector: _ErrorCollector) -> Any:
        from edge_sdk.demo.monitor import DemoMonitor
        from edge_sdk.demo.view import LiveView
        from edge_sdk.transport.topics import Topics

        monitor = DemoMonitor(
            base,
            Topics(self.options.prefix, self.options.vehicle_id),
            stored_count=lambda: int(ingest.counts.get("stored.result", 0)),
            error_count=lambda: len(collector.messages),
        )
        monitor.start(self.options.duration_s, CONNECT_TIMEOUT_S)
        stack.callback(monitor.stop)
        view = LiveView(monitor.snapshot, draw=self.options.live, line_sink=self.options.progress)
        view.start()
        stack.callback(view.stop)
        return monitor

    # -- run and stop ---------------------------------------------------

    def _wait(self, thread: threading.Thread) -> None:
        deadline = time.monotonic() + self.options.duration_s
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(min(0.5, max(0.0, deadline - time.monotonic())))

    def _stop_daemon(self, thread: threading.Thread, ingest: Any) -> int:
        """Stop the daemon, wait until the subscriber stored what it published; return the frames inferred."""
        self.daemon.request_stop()
        thread.join(DAEMON_JOIN_S)
        if thread.is_alive():
            logger.error("demo: the daemon did not stop within %.0f s", DAEMON_JOIN_S)
        counters = self.daemon.metrics.counters.snapshot()
        expected = counters.get("results_published", 0) + counters.get("cloud_results_published", 0) + counters.get("summaries_published", 0)
        stored: Callable[[Any], bool] = lambda counts: counts.get("stored.result", 0) + counts.get("duplicate", 0) >= expected
        if not ingest.wait_for(stored, DRAIN_TIMEOUT_S):
            logger.warning("demo: %d results published but %d stored after %.0f s", expected, ingest.counts.get("stored.result", 0), DRAIN_TIMEOUT_S)
        return int(counters.get("frames_inferred", 0))

    def _escalation_stats(self) -> dict[str, Any]:
        escalator = self.daemon.escalator if self.daemon is not None else None
        return escalator.stats() if escalator is not None else {}

    def _context(self, broker: EmbeddedBroker | None) -> dict[str, str]:
        assert self.files is not None
        return {
            "broker": f"embedded amqtt (MQTT 3.1.1) on {broker.url}" if broker is not None else str(self.options.broker_url),
            "source": str(self.files.source),
            "edge_model": str(self.files.edge_model),
            "cloud_model": str(self.files.cloud_model),
            "database": str(self.files.database),
        }

    def _extra(self, monitor: Any, vehicle_paths: dict[str, str], ingest: Any) -> dict[str, Any]:
        counters = self.daemon.metrics.counters.snapshot() if self.daemon is not None else {}
        status = monitor.status()
        return {
            "daemon_counters": counters,
            "escalation": status.get("escalation", {}),
            "spool_depth_at_end": (status.get("spool") or {}).get("depth"),
            "vehicle_simulator": "running" if vehicle_paths else "off",
            "ingest_counts": dict(ingest.counts),
        }


def run_demo(options: DemoOptions) -> DemoReport:
    """Run the demo once and return its report."""
    return DemoRun(options).run()


__all__ = [
    "DemoError",
    "DemoOptions",
    "DemoRun",
    "PartFiles",
    "VehicleLogs",
    "check_broker_reachable",
    "check_models",
    "load_vehicle_sim",
    "prepare_files",
    "run_demo",
]
