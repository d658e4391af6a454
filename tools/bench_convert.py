#!/usr/bin/env python3
"""Compare every quantization candidate of one model: size, median invoke time and accuracy, as JSON.

Runs the converter's `auto` selection for `--target cpu` with the accuracy
gate opened wide (so every candidate is measured, not only those inside the
gate), then writes one JSON record per candidate plus the machine and
library versions. Invoke times are medians over the calibration frames, run
by the vehicle runtime's interpreter on this machine.

Usage:
  python tools/bench_convert.py MODEL --calibration PATH --validation PATH [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a .keras/.h5 model or SavedModel directory")
    parser.add_argument("--calibration", type=Path, required=True, help="calibration frames (folder, video or .npy/.npz)")
    parser.add_argument("--validation", type=Path, required=True, help="labelled set (class folders or CSV)")
    parser.add_argument("--labels", type=Path, default=None, help="labels file (default: labels.txt beside the model)")
    parser.add_argument("--samples", type=int, default=200, help="calibration samples (default: 200)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the backend's)")
    parser.add_argument("--mean", type=float, default=0.0, help="normalization mean for 0-255 pixels (default: 0)")
    parser.add_argument("--std", type=float, default=1.0, help="normalization std (default: 1)")
    parser.add_argument("--out", type=Path, default=Path("bench_convert.json"), help="JSON file to write (default: bench_convert.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from edge_sdk.convert import ConvertOptions, convert

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as temp:
        report = convert(
            ConvertOptions(
                model=args.model,
                output=Path(temp) / "package",
                target="cpu",
                quantize="auto",
                calibration=args.calibration,
                samples=args.samples,
                validation=args.validation,
                labels=args.labels,
                mean=(args.mean,),
                std=(args.std,),
                max_accuracy_drop=100.0,
                num_threads=args.threads,
                report_path=Path(temp) / "report.json",
            )
        )
    result = {
        "model": str(args.model),
        "validation": str(args.validation),
        "calibration": report.calibration,
        "threads": args.threads,
        "machine": _machine(),
        "candidates": [_candidate_record(c) for c in report.candidates],
        "fastest": min((c for c in report.candidates if c.median_invoke_ms), key=lambda c: c.median_invoke_ms).mode,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_table(result)
    return 0


def _candidate_record(candidate: object) -> dict:
    evaluation = candidate.evaluation
    return {
        "mode": candidate.mode,
        "size_bytes": candidate.size_bytes,
        "median_invoke_ms": candidate.median_invoke_ms,
        "float_top1": None if evaluation is None else evaluation.float_top1,
        "quantized_top1": None if evaluation is None else evaluation.quantized_top1,
        "top1_agreement": None if evaluation is None else evaluation.top1_agreement,
        "accuracy_drop_points": None if evaluation is None else round(evaluation.accuracy_drop_points, 3),
        "error": candidate.error,
    }


def _machine() -> dict:
    import numpy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    for module in ("tensorflow", "ai_edge_litert"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            versions[module] = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(), **versions}


def _print_table(result: dict) -> None:
    print(f"{'mode':8} {'size KiB':>9} {'invoke ms':>10} {'top-1':>7} {'agree':>7} {'drop':>6}")
    for c in result["candidates"]:
        if c["error"]:
            print(f"{c['mode']:8} error: {c['error']}")
            continue
        print(
            f"{c['mode']:8} {c['size_bytes'] / 1024:9.1f} {c['median_invoke_ms']:10.4f} "
            f"{100 * c['quantized_top1']:6.2f}% {100 * c['top1_agreement']:6.2f}% {c['accuracy_drop_points']:6.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
