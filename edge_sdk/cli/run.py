"""`edge-sdk run`: the on-vehicle daemon."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_sdk.daemon.config import DaemonConfig

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run",
        help="run the on-vehicle daemon: cameras -> model -> MQTT",
        description="Read camera sources, run the model on each frame and publish results, events and status over MQTT.",
    )
    parser.add_argument("--config", required=True, metavar="PATH", help="vehicle config file (.toml, .yaml or .yml); keys are listed in docs/daemon.md")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the config file and the files it names (models, labels, videos, spool folder, TLS and DBC files), then exit; connects to nothing",
    )
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from edge_sdk.daemon.config import load_config
    from edge_sdk.daemon.service import Daemon

    config = load_config(args.config)
    if args.check:
        return check_command(args.config, config)

    daemon = Daemon(config)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        daemon.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return daemon.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_command(config_path: str, config: DaemonConfig) -> int:
    """Check the files a loaded config names; print every problem and return the exit code."""
    from edge_sdk.daemon.check import check_files
    from edge_sdk.daemon.errors import DaemonError
    from edge_sdk.daemon.service import build_vehicle_links

    errors: list[str] = [str(error) for error in check_files(config)]
    if config.vehicle is not None and not any(error.startswith("vehicle.") for error in errors):
        try:
            build_vehicle_links(config)
        except DaemonError as exc:
            errors.append(str(exc))
    if errors:
        for error in errors:
            print(f"edge-sdk run: error: {config_path}: {error}", file=sys.stderr)
        noun = "problem" if len(errors) == 1 else "problems"
        print(f"edge-sdk run: {config_path}: {len(errors)} {noun} found", file=sys.stderr)
        return 1
    print(f"{config_path}: valid ({len(config.sources)} sources, {len(config.models)} models, vehicle {config.vehicle_id})")
    return 0
