#!/usr/bin/env python3
"""Benchmark the on-vehicle daemon against bare model invocation on the same frames.

One run measures, each stage in a child process of its own so that peak
memory (ru_maxrss from wait4) belongs to that stage alone:

- bare: every frame of the clip decoded into memory first, then
  `Model.predict` on each frame in a loop (`--passes` times);
- pipeline: the daemon on the same clip (file source, pace "lockstep" so
  every frame is processed once), publishing to a Mosquitto broker started on
  a free loopback port. Throughput is frames divided by the time from the
  first inference start to the last broker acknowledgement. Capture-to-ack
  latency percentiles come from the daemon's own measurement.

Usage:
    python tools/bench_daemon.py --data ../shared/data --output bench_daemon.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def _model_paths(data: Path) -> tuple[Path, Path, Path]:
    return data / "detection" / "detect.tflite", data / "detection" / "COCO_labels.txt", data / "video" / "solidWhiteRight.mp4"


def run_bare(data: Path, passes: int, num_threads: int | None) -> dict[str, Any]:
    import cv2

    from edge_sdk.runtime import Model

    model_path, labels, clip = _model_paths(data)
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()

    with Model.load(model_path, labels=labels, label_offset=1, num_threads=num_threads) as model:
        model.predict(frames[0])
        started = time.perf_counter()
        for _ in range(passes):
            for image in frames:
                model.predict(image)
        elapsed = time.perf_counter() - started
    count = len(frames) * passes
    return {"frames": count, "seconds": round(elapsed, 3), "fps": round(count / elapsed, 2)}


class _TimedModel:
    """Records when the first inference started; everything else is passed through."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.first_start: float | None = None

    def predict(self, image: Any) -> Any:
        if self.first_start is None:
            self.first_start = time.monotonic()
        return self.model.predict(image)

    def close(self) -> None:
        self.model.close()


def _write_config(path: Path, data: Path, port: int, spool: Path, num_threads: int | None) -> None:
    model_path, labels, clip = _model_paths(data)
    threads = f"num_threads = {num_threads}\n" if num_threads else ""
    path.write_text(
        f"""vehicle_id = "bench-car"
status_interval_s = 5

[mqtt]
port = {port}

[spool]
path = "{spool}"

[publish]
summary_interval_s = 0

[models.detector]
path = "{model_path}"
labels = "{labels}"
label_offset = 1
{threads}
[[sources]]
id = "front"
kind = "file"
path = "{clip}"
pace = "lockstep"
model = "detector"
"""
    )


def run_pipeline(data: Path, num_threads: int | None) -> dict[str, Any]:
    from edge_sdk.daemon.config import load_config
    from edge_sdk.daemon.service import Daemon, load_model
    from tests.broker import MosquittoBroker

    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp, MosquittoBroker(Path(tmp) / "broker") as broker:
        config_path = Path(tmp) / "vehicle.toml"
        _write_config(config_path, data, broker.port, Path(tmp) / "spool.sqlite", num_threads)
        timed: list[_TimedModel] = []

        def loader(name: str, section: Any, config: Any) -> _TimedModel:
            timed.append(_TimedModel(load_model(name, section, config)))
            return timed[-1]

        daemon = Daemon(load_config(config_path), model_loader=loader)
        ack_times: list[float] = []
        window = daemon.metrics.capture_to_ack_ms
        original_add = window.add_ms

        def add_and_stamp(milliseconds: float) -> None:
            ack_times.append(time.monotonic())
            original_add(milliseconds)

        window.add_ms = add_and_stamp  # type: ignore[method-assign]
        exit_code = daemon.run()
        frames = daemon.metrics.counters.get("results_published")
        elapsed = ack_times[-1] - timed[0].first_start if ack_times and timed and timed[0].first_start else float("nan")
        latency = window.percentiles(50, 99)
        return {
            "exit_code": exit_code,
            "frames": frames,
            "acked": len(ack_times),
            "seconds": round(elapsed, 3),
            "fps": round(frames / elapsed, 2),
            "capture_to_ack_ms": latency,
            "inference_ms": daemon.metrics.inference_ms.percentiles(50, 95),
            "drops": sum(s.stats().dropped for s in daemon._sources.values()),
        }


def run_child(stage: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one stage in a child process; return its JSON plus its peak resident memory."""
    command = [sys.executable, __file__, "--stage", stage, "--data", str(args.data), "--passes", str(args.passes)]
    if args.num_threads:
        command += ["--num-threads", str(args.num_threads)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    stdout_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stdout_chunks.append(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    reader.join()
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bench stage {stage} failed with exit code {process.returncode}:\n{stderr[-3000:]}")
    result = json.loads(b"".join(stdout_chunks))
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024.0, 1)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data", help="real data folder with detection/ and video/")
    parser.add_argument("--passes", type=int, default=1, help="passes over the clip for the bare measurement")
    parser.add_argument("--repeat", type=int, default=3, help="bare/pipeline pairs to run, alternating; medians are reported")
    parser.add_argument("--num-threads", type=int, default=None, help="interpreter threads for both stages (default: the runtime's choice)")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON result here as well as to stdout")
    parser.add_argument("--stage", choices=("bare", "pipeline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The daemon config resolves relative paths against its own folder, a temporary one here.
    args.data = Path(args.data).resolve()

    if args.stage == "bare":
        print(json.dumps(run_bare(args.data, args.passes, args.num_threads)))
        return 0
    if args.stage == "pipeline":
        print(json.dumps(run_pipeline(args.data, args.num_threads)))
        return 0

    # Alternate the stages so that load from other processes on the machine hits both alike.
    runs = []
    for _ in range(args.repeat):
        bare = run_child("bare", args)
        pipeline = run_child("pipeline", args)
        runs.append({"bare": bare, "pipeline": pipeline, "throughput_ratio": round(pipeline["fps"] / bare["fps"], 3)})
    ratios = sorted(run["throughput_ratio"] for run in runs)
    latencies = [run["pipeline"]["capture_to_ack_ms"] for run in runs]
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(), "load_average_1min": round(os.getloadavg()[0], 2)},
        "command": " ".join(["python", "tools/bench_daemon.py", *sys.argv[1:]]),
        "runs": runs,
        "median_throughput_ratio": ratios[len(ratios) // 2],
        "median_bare_fps": sorted(run["bare"]["fps"] for run in runs)[len(runs) // 2],
        "median_pipeline_fps": sorted(run["pipeline"]["fps"] for run in runs)[len(runs) // 2],
        "median_capture_to_ack_p50_ms": sorted(item["p50"] for item in latencies)[len(runs) // 2],
        "median_capture_to_ack_p99_ms": sorted(item["p99"] for item in latencies)[len(runs) // 2],
        "max_pipeline_peak_rss_mb": max(run["pipeline"]["peak_rss_mb"] for run in runs),
        "target_ratio": 0.9,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
