"""`edge-sdk run`: the on-vehicle daemon."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run",
        help="run the on-vehicle daemon: cameras -> model -> MQTT",
        description="Read camera sources, run the model on each frame and publish results, events and status over MQTT.",
    )
    parser.add_argument("--config", required=True, metavar="PATH", help="vehicle config file (.toml, .yaml or .yml); keys are listed in docs/daemon.md")
    parser.add_argument("--check", action="store_true", help="check the config file and exit without starting")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from edge_sdk.daemon.config import load_config
    from edge_sdk.daemon.service import Daemon, build_vehicle_links

    config = load_config(args.config)
    if args.check:
        if config.vehicle is not None:
            build_vehicle_links(config)
        print(f"{args.config}: valid ({len(config.sources)} sources, {len(config.models)} models, vehicle {config.vehicle_id})")
        return 0

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
