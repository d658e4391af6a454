#!/usr/bin/env python3
"""Benchmark the MaaS worker: requests per second with batching off and on, one and two workers, in one run.

A local Mosquitto broker is started on a free loopback port. For each
configuration the workers join one shared-subscription group, a test vehicle
publishes `--requests` escalation requests as fast as its client sends them,
and the run ends when every reply has arrived. Throughput is requests over
the time from the first publish to the last reply; latency is per request,
publish to reply. Each configuration runs `--repeat` times, interleaved,
and the median round is reported. Workers run in this process, each with its own model
instance.

Usage:
    python tools/bench_maas.py --model ../shared/data/coral/mobilenet_v2_1.0_224_quant.tflite \
        --labels ../shared/data/coral/imagenet_labels.txt --image ../shared/data/coral/grace_hopper.bmp --output bench.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from edge_sdk.cloud.inference import load_cloud_model  # noqa: E402
from edge_sdk.cloud.maas import MaasConfig, MaasWorker  # noqa: E402
from edge_sdk.transport.client import InboundMessage, MqttClient  # noqa: E402
from edge_sdk.transport.config import MqttConfig  # noqa: E402
from edge_sdk.transport.payloads import (  # noqa: E402
    EnvelopeBuilder,
    EscalationRequest,
    ModelRef,
    escalation_properties,
    parse_envelope,
    parse_escalation_reply,
)
from edge_sdk.transport.topics import MessageKind, Topics  # noqa: E402
from tests.broker import MosquittoBroker  # noqa: E402

logger = logging.getLogger("bench_maas")
PREFIX = "bench"


class Requester:
    """The benchmark's vehicle: publishes requests and timestamps every reply."""

    def __init__(self, broker: MosquittoBroker, jpeg: bytes) -> None:
        self.topics = Topics(PREFIX, "bench-car")
        self.builder = EnvelopeBuilder("bench-car")
        self.jpeg = jpeg
        self.sent: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.errors = 0
        self._done = threading.Condition()
        config = MqttConfig(host=broker.host, port=broker.port, client_id=f"bench-car-{uuid.uuid4().hex[:6]}", inflight_window=64)
        self.client = MqttClient(config)
        self.client.subscribe(self.topics.escalation_replies, self._on_reply, qos=1)
        self.client.start()
        if not self.client.wait_connected(10.0):
            raise SystemExit(f"cannot connect to the benchmark broker on port {broker.port}")

    def _on_reply(self, message: InboundMessage) -> None:
        reply = parse_escalation_reply(parse_envelope(message.payload).body)
        with self._done:
            self.received.setdefault(reply.correlation_id, time.perf_counter())
            self.errors += reply.error is not None
            self._done.notify_all()

    def send(self, count: int) -> None:
        for index in range(count):
            correlation_id = uuid.uuid4().hex
            request = EscalationRequest(
                frame_id=str(index), source_id="bench", capture_time=time.time(), edge_result={}, model=ModelRef("edge", "1"),
                correlation_id=correlation_id, reply_to=self.topics.escalation_replies, image_jpeg=self.jpeg,
            )
            envelope = self.builder.build(MessageKind.ESCALATIONS, request.to_body())
            self.sent[correlation_id] = time.perf_counter()
            self.client.publish(self.topics.escalations, envelope, qos=1, properties=escalation_properties(correlation_id, self.topics.escalation_replies))

    def wait(self, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: len(self.received) >= len(self.sent), timeout)

    def close(self) -> None:
        self.client.stop(timeout=5.0)


def run_configuration(broker: MosquittoBroker, args: argparse.Namespace, jpeg: bytes, workers: int, max_batch: int) -> dict:
    group = f"g{uuid.uuid4().hex[:6]}"
    mqtt_config = MqttConfig(host=broker.host, port=broker.port)
    started_workers = []
    for index in range(workers):
        model = load_cloud_model(args.model, labels=args.labels, num_threads=args.threads)
        config = MaasConfig(worker_id=f"{group}-w{index}", prefix=PREFIX, group=group, max_batch=max_batch, max_wait_ms=args.max_wait_ms, status_interval_s=60.0)
        worker = MaasWorker(model, mqtt_config, config)
        worker.start(connect_timeout=10.0)
        started_workers.append(worker)
    requester = Requester(broker, jpeg)
    try:
        # Warm-up: one request per worker, so model and connection setup stay out of the figures.
        requester.send(workers)
        if not requester.wait(60.0):
            raise SystemExit("warm-up requests got no reply within 60 s: check the worker log (run with -v)")
        requester.sent.clear()
        requester.received.clear()
        started = time.perf_counter()
        requester.send(args.requests)
        if not requester.wait(args.timeout):
            raise SystemExit(f"only {len(requester.received)} of {args.requests} replies arrived within {args.timeout} s")
        elapsed = time.perf_counter() - started
        statuses = [worker.status() for worker in started_workers]
    finally:
        requester.close()
        for worker in started_workers:
            worker.stop()
            worker.model.close()
    latencies = np.asarray([(requester.received[cid] - sent) * 1000.0 for cid, sent in requester.sent.items()])
    batch_sizes: dict[str, int] = {}
    for status in statuses:
        for size, count in status["batch_sizes"].items():
            batch_sizes[size] = batch_sizes.get(size, 0) + count
    return {
        "workers": workers,
        "max_batch": max_batch,
        "max_wait_ms": args.max_wait_ms if max_batch > 1 else 0.0,
        "requests": args.requests,
        "error_replies": requester.errors,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(args.requests / elapsed, 1),
        "latency_ms": {f"p{q}": round(float(np.percentile(latencies, q)), 1) for q in (50, 90, 99)},
        "batch_sizes": dict(sorted(batch_sizes.items(), key=lambda item: int(item[0]))),
        "per_worker_requests": [status["requests"] for status in statuses],
    }


def _median_run(runs: list[dict]) -> dict:
    """Return the run with the median throughput, with every round's throughput beside it."""
    ordered = sorted(runs, key=lambda run: run["requests_per_s"])
    median = dict(ordered[len(ordered) // 2])
    median["requests_per_s_rounds"] = [run["requests_per_s"] for run in runs]
    return median


def encode_image(path: Path, quality: int) -> bytes:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{path} could not be decoded as an image")
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SystemExit(f"{path} could not be JPEG-encoded")
    return buffer.tobytes()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model the workers run: package, .tflite, .keras or SavedModel")
    parser.add_argument("--labels", help="labels file for a bare .tflite")
    parser.add_argument("--image", type=Path, required=True, help="image sent in every request, JPEG-encoded")
    parser.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality of the requests (default %(default)s)")
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration (default %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="max_batch when batching is on (default %(default)s)")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="max_wait_ms when batching is on (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads per TFLite worker (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all configurations; figures are the median round (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every reply of one configuration")
    parser.add_argument("--output", type=Path, default=Path("bench_maas.json"), help="JSON file to write")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    jpeg = encode_image(args.image, args.jpeg_quality)
    configurations = [(workers, max_batch) for workers in (1, 2) for max_batch in (1, args.batch)]
    rounds: dict[tuple[int, int], list[dict]] = {configuration: [] for configuration in configurations}
    with tempfile.TemporaryDirectory(prefix="bench-maas-") as workdir, MosquittoBroker(Path(workdir)) as broker:
        # Rounds interleave the configurations, so a burst of load from other processes
        # hits all of them alike instead of one; each figure is the median round.
        for _ in range(args.repeat):
            for workers, max_batch in configurations:
                run = run_configuration(broker, args, jpeg, workers, max_batch)
                logger.warning("workers=%d max_batch=%d: %.1f requests/s", workers, max_batch, run["requests_per_s"])
                rounds[(workers, max_batch)].append(run)
    runs = [_median_run(rounds[configuration]) for configuration in configurations]
    result = {
        "command": "python tools/bench_maas.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "model": str(args.model),
        "image": str(args.image),
        "request_jpeg_bytes": len(jpeg),
        "runs": runs,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
