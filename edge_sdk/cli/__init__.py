"""The `edge-sdk` command line.

Each command group lives in its own module of this package and exposes
`register(subparsers)`. Command modules import heavy libraries (TensorFlow,
interpreters, OpenCV) only inside their handlers, so `edge-sdk --help` stays
fast and a vehicle install without the `convert` extra still runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edge_sdk import __version__
from edge_sdk.errors import EdgeSdkError

logger = logging.getLogger(__name__)

# Command modules in the order their commands appear in `--help`.
COMMAND_MODULES = (
    "edge_sdk.cli.demo",
    "edge_sdk.cli.runtime",
    "edge_sdk.cli.convert",
    "edge_sdk.cli.attach",
    "edge_sdk.cli.run",
    "edge_sdk.cli.cloud",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-sdk",
        description="Convert vision models for the edge, run them on vehicle cameras and exchange results over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more: -v for INFO, -vv for DEBUG")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeSdkError as exc:
        print(f"edge-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
