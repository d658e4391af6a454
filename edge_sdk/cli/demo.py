"""`edge-sdk demo`: run broker, MaaS worker, ingest subscriber, vehicle simulator and daemon together."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo",
        help="run the whole system on a built-in road clip and sign model, then write a report",
        description=(
            "Start an MQTT broker (embedded unless --broker is given), a MaaS worker, a telemetry ingest subscriber, "
            "the vehicle simulator and the daemon, show live figures, and write report.html and report.json. "
            "Exits with 0 when frames were processed, results were stored, at least one escalation was answered and no error was logged."
        ),
    )
    parser.add_argument("--duration", type=float, metavar="S", default=30.0, help="seconds the daemon runs (default %(default)s)")
    parser.add_argument("--source", type=Path, metavar="PATH", help="your own video file instead of the rendered road clip (played once)")
    parser.add_argument("--model", type=Path, metavar="PATH", help="your own model package, archive or .tflite for the daemon instead of the built-in int8 sign model")
    parser.add_argument("--labels", type=Path, metavar="PATH", help="labels file (one label a line) for a bare .tflite given with --model")
    parser.add_argument("--label-offset", type=int, default=0, metavar="N", help="lines to skip at the top of --labels, 1 for COCO files starting with 'unlabeled' (default %(default)s)")
    parser.add_argument("--cloud-model", type=Path, metavar="PATH", help="model for the MaaS worker instead of the built-in float sign model")
    parser.add_argument("--broker", metavar="URL", help="use this broker (mqtt://host:port, mqtts://..., ?protocol=3.1.1) instead of the embedded one")
    parser.add_argument("--out", type=Path, metavar="DIR", default=Path("edge-sdk-demo"), help="folder for the clip, logs, database and report (default %(default)s)")
    parser.add_argument("--vehicle-id", default="demo-car", help="vehicle id in topics and records (default %(default)s)")
    parser.add_argument("--prefix", default="demo", help="topic prefix (default %(default)s)")
    parser.add_argument("--escalate-below", type=float, metavar="SCORE", default=0.8, help="escalate frames whose top score is below this, 0 to 1 (default %(default)s)")
    parser.add_argument("--no-live", action="store_true", help="do not draw the live view; print a line of figures to stderr every 5 seconds instead")
    parser.add_argument("--no-vehicle", action="store_true", help="run without the vehicle simulator")
    parser.add_argument("--prepare-only", action="store_true", help="write the clip, vehicle logs and vehicle.yaml into --out and exit")
    parser.set_defaults(func=demo_command)


def _check(args: argparse.Namespace) -> None:
    from edge_sdk.errors import ConfigError

    if args.duration <= 0:
        raise ConfigError(f"--duration {args.duration} is invalid: give a positive number of seconds")
    if not 0.0 <= args.escalate_below <= 1.0:
        raise ConfigError(f"--escalate-below {args.escalate_below} is invalid: give a score from 0 to 1")


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def demo_command(args: argparse.Namespace) -> int:
    from edge_sdk.demo.run import DemoOptions, prepare_files, run_demo
    from edge_sdk.demo.summary import print_summary

    _check(args)
    # amqtt and its state machine library log every connection at INFO, which buries the demo's own lines.
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    options = DemoOptions(
        duration_s=args.duration,
        out_dir=args.out,
        source=args.source,
        model=args.model,
        labels=args.labels,
        label_offset=args.label_offset,
        cloud_model=args.cloud_model,
        broker_url=args.broker,
        vehicle_id=args.vehicle_id,
        prefix=args.prefix,
        escalate_below=args.escalate_below,
        live=not args.no_live,
        vehicle=not args.no_vehicle,
        progress=_print_progress,
    )
    if args.prepare_only:
        files = prepare_files(options)
        print(f"wrote {files.source}, {files.logs.nmea.parent} and {files.out_dir / 'vehicle.yaml'}")
        return 0
    report = run_demo(options)
    print_summary(report, options.out_dir.resolve())
    return 0 if report.passed else 1
