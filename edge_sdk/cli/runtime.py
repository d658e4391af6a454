"""`edge-sdk inspect`, `edge-sdk predict` and `edge-sdk bench`: look at, run and time a model on this machine."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from edge_sdk.runtime.errors import InputImageError, ModelConfigError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    inspect_parser = subparsers.add_parser("inspect", help="print a model's tensors, quantization, operators and size")
    inspect_parser.add_argument("model", type=Path, help="package directory, package archive or .tflite file")
    inspect_parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    _add_load_options(inspect_parser, bare_options=False)
    inspect_parser.set_defaults(func=run_inspect)

    predict_parser = subparsers.add_parser("predict", help="run a model on image files and print the results")
    predict_parser.add_argument("model", type=Path, help="package directory, package archive or .tflite file")
    predict_parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files OpenCV can read")
    predict_parser.add_argument("--json", action="store_true", help="print one JSON object per image, one per line")
    _add_load_options(predict_parser, bare_options=True)
    predict_parser.set_defaults(func=run_predict)

    bench_parser = subparsers.add_parser("bench", help="time predict() against a bare invoke() on the same frames")
    bench_parser.add_argument("model", type=Path, help="package directory, package archive or .tflite file")
    bench_parser.add_argument("--image", type=Path, action="append", default=[], help="frame to use (repeatable); a video file gives its first frames")
    bench_parser.add_argument("--video-frames", type=int, default=10, help="frames taken from each video given with --image (default 10)")
    bench_parser.add_argument("--rounds", type=int, default=300, help="timed rounds (default 300)")
    bench_parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first (default 30)")
    bench_parser.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_load_options(bench_parser, bare_options=True)
    bench_parser.set_defaults(func=run_bench)


def _add_load_options(parser: argparse.ArgumentParser, *, bare_options: bool) -> None:
    parser.add_argument("--backend", choices=("ai_edge_litert", "tflite_runtime", "tensorflow"), help="interpreter backend (default: env EDGE_SDK_BACKEND, else the first installed)")
    parser.add_argument("--threads", type=int, help="interpreter threads (default: the backend's)")
    parser.add_argument("--edgetpu", metavar="DEVICE", nargs="?", const="", help="attach the Edge TPU delegate, optionally on DEVICE (usb, usb:0, pci, pci:0)")
    parser.add_argument("--delegate", action="append", default=[], metavar="LIBRARY", help="attach a delegate from a shared library path (repeatable), such as a GPU delegate")
    parser.add_argument("--labels", type=Path, help="labels file, one label per line (bare .tflite; overrides a package's)")
    if not bare_options:
        return
    parser.add_argument("--mean", type=float, nargs="+", help="normalization mean per channel, pixel units 0-255 (needed for a bare float model)")
    parser.add_argument("--std", type=float, nargs="+", help="normalization standard deviation per channel, pixel units (needed for a bare float model)")
    parser.add_argument("--task", choices=("classification", "detection", "segmentation"), help="task of a bare .tflite (default: guessed from its outputs)")
    parser.add_argument("--resize", choices=("stretch", "letterbox", "center_crop"), default="stretch", help="resize mode of a bare .tflite (default stretch)")
    parser.add_argument("--color-order", choices=("RGB", "BGR", "GRAY"), default="RGB", help="input color order of a bare .tflite (default RGB)")
    parser.add_argument("--label-offset", type=int, help="line of the labels file holding class 0 (default: guessed)")
    parser.add_argument("--threshold", type=float, help="minimum score of a detection (default: the manifest's, 0.5 for a bare model)")
    parser.add_argument("--top-k", type=int, default=5, help="classes printed per image (default 5)")


def _delegates(args: argparse.Namespace) -> list[Any]:
    from edge_sdk.runtime.interpreter import DelegateSpec

    delegates: list[Any] = [DelegateSpec(library) for library in args.delegate]
    if args.edgetpu is not None:
        delegates.append(DelegateSpec.edgetpu(args.edgetpu or None))
    return delegates


def _load_model(args: argparse.Namespace):
    from edge_sdk.runtime.model import Model

    return Model.load(
        args.model,
        labels=args.labels,
        mean=args.mean,
        std=args.std,
        backend=args.backend,
        num_threads=args.threads,
        score_threshold=args.threshold,
        label_offset=args.label_offset,
        task=args.task,
        color_order=args.color_order,
        resize=args.resize,
        top_k=args.top_k,
        delegates=_delegates(args),
    )


def _read_image(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputImageError(f"image {path} cannot be read: check that it exists and is a format OpenCV decodes (JPEG, PNG, BMP)")
    return image


def run_predict(args: argparse.Namespace) -> int:
    with _load_model(args) as model:
        for path in args.images:
            result = model.predict(_read_image(path))
            if args.json:
                print(json.dumps({"image": str(path), **result.to_dict()}))
            else:
                print(_format_result(path, result))
    return 0


def _format_result(path: Path, result: Any) -> str:
    lines = [f"{path}: {result.task}, invoke {result.invoke_ms:.1f} ms, total {result.preprocess_ms + result.invoke_ms + result.postprocess_ms:.1f} ms"]
    for item in result.classifications:
        lines.append(f"  {item.score:6.3f}  {item.label} (class {item.class_id})")
    for item in result.detections:
        box = ", ".join(f"{v:.0f}" for v in item.box.to_list())
        lines.append(f"  {item.score:6.3f}  {item.label} (class {item.class_id})  box [{box}]")
    if result.segmentation is not None:
        for label, fraction in sorted(result.segmentation.class_fractions.items(), key=lambda pair: -pair[1]):
            lines.append(f"  {fraction:6.1%}  {label}")
    if len(lines) == 1:
        lines.append("  nothing above the score threshold")
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    from edge_sdk.runtime.inspection import describe_model, format_description

    description = describe_model(args.model, backend=args.backend, num_threads=args.threads, delegates=_delegates(args))
    print(json.dumps(description, indent=2) if args.json else format_description(description))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from edge_sdk.runtime.bench import run_benchmark

    frames = _bench_frames(args.image, args.video_frames)
    with _load_model(args) as model:
        try:
            report = run_benchmark(model, frames, rounds=args.rounds, warmup=args.warmup)
        except ValueError as exc:
            raise ModelConfigError(f"benchmark options are invalid: {exc}") from exc
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"model {data['model']} ({data['backend']}, threads {data['num_threads']}), frame {data['frame_size'][0]}x{data['frame_size'][1]}, {data['rounds']} rounds")
    for key in ("bare_invoke", "bare_invoke_after_frame_read", "predict", "predict_after_frame_write"):
        stats = data[key]
        print(f"  {key:29s} median {stats['median_ms']:.3f} ms  p99 {stats['p99_ms']:.3f} ms")
    print(f"  overhead of predict() over bare invoke: {data['overhead_ms']:.3f} ms ({data['overhead_percent']:.1f}%)")
    print(f"  work predict() adds around its own invoke: {data['added_work_ms']:.3f} ms ({data['added_work_percent']:.1f}%)")
    print(
        f"  overhead on a frame written just before (as from a decoder): "
        f"{data['fresh_frame_overhead_ms']:.3f} ms ({data['fresh_frame_overhead_percent']:.1f}%)"
    )
    return 0


def _bench_frames(paths: list[Path], video_frames: int) -> list[Any]:
    """Read the benchmark frames; without paths, one seeded random 960x540 frame."""
    import cv2
    import numpy as np

    if not paths:
        logger.warning("no --image given: benchmarking on a random 960x540 frame")
        return [np.random.default_rng(0).integers(0, 256, size=(540, 960, 3), dtype=np.uint8)]
    frames = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov") else None
        if image is not None:
            frames.append(image)
            continue
        frames.extend(_video_frames(path, video_frames))
    return frames


def _video_frames(path: Path, count: int) -> list[Any]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        frames = []
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise InputImageError(f"{path} cannot be read as an image or a video: give a JPEG, PNG, BMP or a video OpenCV decodes")
    return frames

