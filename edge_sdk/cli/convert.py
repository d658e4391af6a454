"""`edge-sdk convert`: quantize a trained model into a checked model package for cpu, jetson or coral."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


logger = logging.getLogger(__name__)

TARGET_CHOICES = ("cpu", "jetson", "coral")
QUANTIZE_CHOICES = ("fp32", "fp16", "dynamic", "int8", "auto")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a Keras model or SavedModel into a quantized model package",
        description=(
            "Convert a .keras/.h5 model or SavedModel directory to TFLite for a target, check what was built, "
            "measure it against the float model and write a model package plus a JSON report. "
            "Exits 1 without a package when no candidate stays within --max-accuracy-drop."
        ),
    )

    parser.add_argument("model", help="a .keras or .h5 file, or a SavedModel directory")
    parser.add_argument("-o", "--output", required=True, help="package directory to write")
    parser.add_argument("--target", choices=TARGET_CHOICES, default="cpu", help="where the model runs (default: cpu)")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE_CHOICES,
        default=None,
        help="quantization mode; default per target: cpu auto, jetson fp16, coral int8 (uint8 input and output)",
    )

    parser.add_argument("--calibration", type=Path, help="folder of images, video file, or .npy/.npz array of real frames")
    parser.add_argument("--samples", type=int, default=200, help="number of calibration samples to use (default: 200)")
    parser.add_argument("--validation", type=Path, help="labelled set: a folder with one sub-folder per class, or a CSV of path,label")
    parser.add_argument("--labels", type=Path, help="labels file, one class name per line (default: labels.txt beside the model)")

    parser.add_argument("--name", help="package name (default: the model file name)")
    parser.add_argument("--version", dest="model_version", default="1", help="package version string (default: 1)")
    parser.add_argument("--task", choices=("classification",), default="classification", help="model task recorded in the manifest (classifiers only for now)")
    parser.add_argument("--color-order", choices=("RGB", "BGR", "GRAY"), default="RGB", help="channel order the model was trained on (default: RGB)")
    parser.add_argument("--resize", choices=("stretch", "letterbox", "center_crop"), default="stretch", help="how frames are fitted to the input size")
    parser.add_argument("--mean", type=_floats, default=(0.0,), help="per-channel mean subtracted from 0-255 pixels, e.g. 127.5 or 123.7,116.3,103.5 (default: 0)")
    parser.add_argument("--std", type=_floats, default=(1.0,), help="per-channel divisor applied after the mean (default: 1)")

    parser.add_argument("--max-accuracy-drop", type=float, default=1.0, help="allowed top-1 loss in percentage points (default: 1.0)")
    parser.add_argument("--report", type=Path, help="where to write the JSON report (default: OUTPUT.report.json)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads for timing (default: the backend's)")
    parser.add_argument("--no-compile", action="store_true", help="coral: do not run edgetpu_compiler even when it is installed")

    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_convert)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or comma-separated list of numbers") from exc


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its start-up lines (absl, oneDNN, CPU features) sent to the debug log.

    TensorFlow 2.21 prints them at any TF_CPP_MIN_LOG_LEVEL. A missing
    TensorFlow is left to convert(), which explains how to install it.
    """
    import importlib.util

    from edge_sdk.convert.source import capture_native_stderr

    if importlib.util.find_spec("tensorflow") is None:
        return
    with capture_native_stderr("TensorFlow import"):
        import tensorflow  # noqa: F401


def run_convert(args: argparse.Namespace) -> int:
    from edge_sdk.convert.source import quiet_tensorflow_logging

    # Before edge_sdk.convert can import TensorFlow, because TF reads its C++ log level once at import.
    verbosity = getattr(args, "verbose", 0)
    quiet_tensorflow_logging(verbosity)
    if verbosity < 2:
        _import_tensorflow_quietly()
    from edge_sdk.convert import AccuracyGateError, ConvertError, ConvertOptions, convert

    options = ConvertOptions(
        model=args.model,
        output=Path(args.output),
        target=args.target,
        quantize=args.quantize,
        calibration=args.calibration,
        samples=args.samples,
        validation=args.validation,
        labels=args.labels,
        name=args.name,
        version=args.model_version,
        task=args.task,
        color_order=args.color_order,
        resize=args.resize,
        mean=args.mean,
        std=args.std,
        max_accuracy_drop=args.max_accuracy_drop,
        report_path=args.report,
        num_threads=args.threads,
        run_compiler=not args.no_compile,
        progress=not args.no_progress and not args.json and sys.stderr.isatty(),
    )
    started = time.time()
    try:
        report = convert(options)
    except AccuracyGateError as exc:
        if exc.report is not None:
            # The report contains the same error text, so the tables are printed without it.
            _print(exc.report, args.json, show_error=False)
        print(f"edge-sdk convert: error: no package written: {exc}", file=sys.stderr)
        return 1
    except ConvertError as exc:
        report_path = Path(args.report) if args.report else Path(f"{args.output}.report.json")
        written = report_path.is_file() and report_path.stat().st_mtime >= started - 1.0
        note = f" (report written to {report_path})" if written and str(report_path) not in str(exc) else ""
        print(f"edge-sdk convert: error: {exc}{note}", file=sys.stderr)
        return 1
    _print(report, args.json)
    return 0


def _print(report: object, as_json: bool, show_error: bool = True) -> None:
    from edge_sdk.convert import render_report

    if as_json:
        sys.stdout.write(report.to_json())
    else:
        render_report(report, show_error=show_error)
