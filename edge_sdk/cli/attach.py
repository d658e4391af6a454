"""`edge-sdk attach-edgetpu`: put a model compiled by `edgetpu_compiler` into a coral package.

`edge-sdk convert --target coral` on a machine without the compiler writes the
int8 CPU model. This command takes the compiler's output from another machine
and makes it the package's model. It needs only the base install: it imports
no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "attach-edgetpu",
        help="put a model compiled by edgetpu_compiler into a coral package",
        description=(
            "Check a model compiled by edgetpu_compiler against a coral package that `edge-sdk convert` wrote without "
            "the compiler, then write it into the package as <model>_edgetpu.tflite and update the manifest "
            "(model file, sha256, edgetpu_compiled) and the conversion report. The CPU model stays in the folder. "
            "Nothing is changed when a check fails."
        ),
    )
    parser.add_argument("package", type=Path, help="the coral package directory")
    parser.add_argument(
        "compiled", type=Path, help="the compiled model, OUTDIR/model_edgetpu.tflite from `edgetpu_compiler -s -o OUTDIR PACKAGE/model.tflite`"
    )
    parser.add_argument("--log", type=Path, help="the compiler's operation log (OUTDIR/model_edgetpu.log), recorded in the report and the manifest")
    parser.add_argument("--report", type=Path, help="conversion report to update (default: PACKAGE.report.json beside the package, skipped when missing)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run_attach_edgetpu)


def run_attach_edgetpu(args: argparse.Namespace) -> int:
    from edge_sdk.convert.attach import attach_compiled_model

    result = attach_compiled_model(args.package, args.compiled, log=args.log, report=args.report)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return 0
    print(f"attached {args.compiled} to {result.package} as {result.model_file} (sha256 {result.model_sha256})")
    print(f"the CPU model stays in the package as {result.cpu_model_file}, and the manifest now names {result.model_file}")
    if result.log is not None:
        log = result.log
        print(f"edgetpu_compiler {log.version}: {log.edgetpu_op_count} ops on the Edge TPU, {log.cpu_op_count} on the CPU")
    if result.report is not None:
        print(f"updated the report {result.report}")
    return 0
