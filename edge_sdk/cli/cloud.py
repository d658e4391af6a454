"""`edge-sdk maas serve` and `edge-sdk telemetry ingest|query|export|summary|dead-letters`: the cloud side.

Handlers import the cloud modules (and through a Keras model, TensorFlow)
only when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_sdk.errors import ConfigError

PASSWORD_ENV = "EDGE_SDK_MQTT_PASSWORD"


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_maas(subparsers)
    _register_telemetry(subparsers)


# --- shared options ---------------------------------------------------------------------------------


def _add_broker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("broker")
    group.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="broker URL: mqtt://host:port, mqtts://host:port for TLS (default %(default)s)")
    group.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="MQTT protocol version (default %(default)s)")
    group.add_argument("--username", help=f"user name; the password is read from the environment variable {PASSWORD_ENV}")
    group.add_argument("--ca-file", help="PEM file of the CA that signed the broker's certificate (TLS)")
    group.add_argument("--cert-file", help="PEM client certificate (TLS client authentication)")
    group.add_argument("--key-file", help="PEM key of the client certificate")
    group.add_argument("--prefix", default="fleet", help="topic prefix shared with the vehicles (default %(default)s)")


def _mqtt_config(args: argparse.Namespace) -> Any:
    from edge_sdk.transport.config import MqttConfig, TlsConfig

    overrides: dict[str, Any] = {"protocol": args.protocol}
    if args.username:
        overrides["username"] = args.username
        overrides["password"] = os.environ.get(PASSWORD_ENV)
    if args.ca_file or args.cert_file or args.key_file:
        overrides["tls"] = TlsConfig(ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
    return MqttConfig.from_url(args.broker, **overrides)


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


# --- maas -------------------------------------------------------------------------------------------


def _register_maas(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("maas", help="answer escalated frames with a heavier model (model as a service)")
    commands = parser.add_subparsers(dest="maas_command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="run a MaaS worker until SIGINT or SIGTERM")
    serve.add_argument("--model", required=True, help="model package directory or archive, .tflite, .keras file or SavedModel directory")
    serve.add_argument("--labels", help="labels file, one class per line (default: the package's or labels.txt beside a Keras model)")
    serve.add_argument("--model-name", help="model name sent in replies (default: from the manifest or the file name)")
    serve.add_argument("--model-version", help="model version sent in replies (default: from the manifest, or 1)")
    serve.add_argument("--num-threads", type=int, help="interpreter threads for a TFLite model (default: the backend's choice)")
    serve.add_argument("--mean", type=float, help="bare float .tflite only: value subtracted from 0-255 pixels")
    serve.add_argument("--std", type=float, help="bare float .tflite only: divisor applied after the mean")
    serve.add_argument("--worker-id", default=socket.gethostname().split(".")[0], help="unique id of this worker; also fixes its client id maas-<id> (default: host name)")
    serve.add_argument("--group", default="maas", help="shared subscription group: workers of one group split the requests (default %(default)s)")
    serve.add_argument("--max-batch", type=int, default=8, help="most requests run as one batch; 1 turns batching off (default %(default)s)")
    serve.add_argument("--max-wait-ms", type=float, default=20.0, help="milliseconds a batch waits for more requests after its first (default %(default)s)")
    serve.add_argument("--max-queue", type=int, default=256, help="requests queued before the worker stops reading (default %(default)s)")
    serve.add_argument("--max-request-bytes", type=int, default=4 * 1024 * 1024, help="larger requests get an error reply (default %(default)s bytes)")
    serve.add_argument("--status-interval", type=float, default=10.0, help="seconds between status messages (default %(default)s)")
    serve.add_argument("--session-expiry", type=int, default=600, help="seconds the broker keeps this worker's session after a disconnect (default %(default)s)")
    _add_broker_options(serve)
    serve.set_defaults(func=_maas_serve)


def _maas_serve(args: argparse.Namespace) -> int:
    from edge_sdk.cloud.inference import load_cloud_model
    from edge_sdk.cloud.maas import MaasConfig, MaasWorker

    config = MaasConfig(
        worker_id=args.worker_id,
        prefix=args.prefix,
        group=args.group,
        max_batch=_positive(args.max_batch, "--max-batch"),
        max_wait_ms=args.max_wait_ms,
        max_queue=_positive(args.max_queue, "--max-queue"),
        max_request_bytes=_positive(args.max_request_bytes, "--max-request-bytes"),
        status_interval_s=args.status_interval,
        session_expiry_s=args.session_expiry,
    )
    bare_options = {key: value for key, value in (("mean", args.mean), ("std", args.std)) if value is not None}
    model = load_cloud_model(
        args.model, labels=args.labels, num_threads=args.num_threads, name=args.model_name, version=args.model_version, **bare_options
    )
    worker = MaasWorker(model, _mqtt_config(args), config)
    try:
        worker.start()
        print(f"maas worker {config.worker_id}: serving {model.name} {model.version} on {config.request_filter} via {args.broker}", file=sys.stderr, flush=True)
        _wait_for_signal()
    finally:
        worker.stop()
        model.close()
    return 0


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise ConfigError(f"{option} is {value}: give a positive number")
    return value


# --- telemetry --------------------------------------------------------------------------------------


def _register_telemetry(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("telemetry", help="store the fleet's messages and query, export or summarize them")
    commands = parser.add_subparsers(dest="telemetry_command", metavar="COMMAND", required=True)

    ingest = commands.add_parser("ingest", help="subscribe to the fleet's topics and store every message until SIGINT or SIGTERM")
    ingest.add_argument("--db", required=True, help="SQLite database file (created when missing)")
    ingest.add_argument("--client-id", default="edge-sdk-ingest", help="fixed client id of the persistent session (default %(default)s)")
    ingest.add_argument("--group", help="shared subscription group, to split the fleet across several ingest processes")
    ingest.add_argument("--kinds", help="comma-separated message kinds to store (default: all)")
    ingest.add_argument("--session-expiry", type=int, default=7 * 24 * 3600, help="seconds the broker keeps the session while ingest is down (default %(default)s)")
    _add_broker_options(ingest)
    ingest.set_defaults(func=_telemetry_ingest)

    query = commands.add_parser("query", help="print stored messages as JSON lines")
    _add_filter_options(query)
    query.set_defaults(func=_telemetry_query)

    export = commands.add_parser("export", help="write stored messages as CSV or JSON lines")
    _add_filter_options(export)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="output format (default %(default)s)")
    export.add_argument("--output", default="-", help="output file, - for standard output (default %(default)s)")
    export.set_defaults(func=_telemetry_export)

    summary = commands.add_parser("summary", help="print per-vehicle counts, latency percentiles and escalation rates")
    summary.add_argument("--db", required=True, help="SQLite database file")
    summary.add_argument("--vehicle", help="only this vehicle id")
    summary.add_argument("--since", help="start time: Unix seconds or ISO 8601 (2026-12-04T20:00:00Z)")
    summary.add_argument("--until", help="end time (exclusive): Unix seconds or ISO 8601")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(func=_telemetry_summary)

    dead = commands.add_parser("dead-letters", help="print the payloads that could not be stored, with the reason")
    dead.add_argument("--db", required=True, help="SQLite database file")
    dead.add_argument("--limit", type=int, help="print at most this many")
    dead.set_defaults(func=_telemetry_dead_letters)


def _add_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite database file")
    parser.add_argument("--vehicle", help="only this vehicle id")
    parser.add_argument("--kind", help="only this kind: result, event, status, escalation, reply or worker_status")
    parser.add_argument("--label", help="only messages whose top label is this")
    parser.add_argument("--since", help="start time: Unix seconds or ISO 8601 (2026-12-04T20:00:00Z)")
    parser.add_argument("--until", help="end time (exclusive): Unix seconds or ISO 8601")
    parser.add_argument("--limit", type=int, help="at most this many messages")
    parser.add_argument("--newest-first", action="store_true", help="order by time, newest first")


def parse_time(value: str | None, option: str) -> float | None:
    """Parse Unix seconds or an ISO 8601 time (naive times are UTC) into Unix seconds."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{option} {value!r} is not a time: give Unix seconds or ISO 8601 such as 2026-12-04T20:00:00Z") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _open_storage(path: str, must_exist: bool = True) -> Any:
    from edge_sdk.cloud.storage import SqliteStorage

    if must_exist and not Path(path).is_file():
        raise ConfigError(f"telemetry database {path} not found: run `edge-sdk telemetry ingest --db {path}` first or check the path")
    return SqliteStorage(path)


def _message_query(args: argparse.Namespace) -> Any:
    from edge_sdk.cloud.records import MessageQuery

    return MessageQuery(
        vehicle_id=args.vehicle,
        kind=args.kind,
        since=parse_time(args.since, "--since"),
        until=parse_time(args.until, "--until"),
        label=args.label,
        limit=args.limit,
        ascending=not args.newest_first,
    )


def _telemetry_ingest(args: argparse.Namespace) -> int:
    from edge_sdk.cloud.ingest import IngestConfig, IngestSubscriber
    from edge_sdk.transport.topics import parse_kind

    kinds = tuple(parse_kind(name.strip()) for name in args.kinds.split(",")) if args.kinds else IngestConfig().kinds
    config = IngestConfig(prefix=args.prefix, client_id=args.client_id, kinds=kinds, group=args.group, session_expiry_s=args.session_expiry)
    with _open_storage(args.db, must_exist=False) as storage:
        subscriber = IngestSubscriber(storage, config, _mqtt_config(args))
        try:
            subscriber.start()
            print(f"telemetry ingest {config.client_id}: storing {', '.join(subscriber.topic_filters())} into {args.db}", file=sys.stderr, flush=True)
            _wait_for_signal()
        finally:
            subscriber.stop()
        print(f"telemetry ingest stopped: {dict(subscriber.counts)}", file=sys.stderr)
    return 0


def _telemetry_query(args: argparse.Namespace) -> int:
    from edge_sdk.cloud.reports import export_messages

    with _open_storage(args.db) as storage:
        export_messages(storage, _message_query(args), sys.stdout, "jsonl")
    return 0


def _telemetry_export(args: argparse.Namespace) -> int:
    from edge_sdk.cloud.reports import export_messages

    with _open_storage(args.db) as storage:
        if args.output == "-":
            written = export_messages(storage, _message_query(args), sys.stdout, args.format)
        else:
            with open(args.output, "w", encoding="utf-8", newline="") as output:
                written = export_messages(storage, _message_query(args), output, args.format)
    print(f"exported {written} messages", file=sys.stderr)
    return 0


def _telemetry_summary(args: argparse.Namespace) -> int:
    from edge_sdk.cloud.reports import summarize

    with _open_storage(args.db) as storage:
        summaries = summarize(storage, parse_time(args.since, "--since"), parse_time(args.until, "--until"), args.vehicle)
    if args.json:
        print(json.dumps([summary.to_dict() for summary in summaries], indent=2))
        return 0
    _print_summary_table(summaries)
    return 0


def _print_summary_table(summaries: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="telemetry per vehicle (latencies in ms)")
    for column in ("vehicle", "results", "events", "escalations", "replies", "escalation rate", "replied", "inference p50/p90/p99", "cloud rtt p50/p90/p99", "delivery p50/p99"):
        table.add_column(column)
    for summary in summaries:
        counts = summary.counts
        table.add_row(
            summary.vehicle_id,
            str(counts.get("result", 0)),
            str(counts.get("event", 0)),
            str(counts.get("escalation", 0)),
            str(counts.get("reply", 0)),
            _fraction(summary.escalation_rate),
            _fraction(summary.replied_rate),
            _triple(summary.inference_ms, ("p50", "p90", "p99")),
            _triple(summary.cloud_rtt_ms, ("p50", "p90", "p99")),
            _triple(summary.delivery_ms, ("p50", "p99")),
        )
    Console().print(table)


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _triple(values: dict[str, float | None], keys: tuple[str, ...]) -> str:
    return "/".join("-" if values.get(key) is None else f"{values[key]:.1f}" for key in keys)


def _telemetry_dead_letters(args: argparse.Namespace) -> int:
    with _open_storage(args.db) as storage:
        for letter in storage.dead_letters(args.limit):
            record = {
                "received_at": letter.received_at,
                "topic": letter.topic,
                "vehicle_id": letter.vehicle_id,
                "reason": letter.reason,
                "payload": letter.payload[:200].decode("utf-8", errors="replace"),
                "payload_bytes": len(letter.payload),
            }
            print(json.dumps(record))
    return 0
