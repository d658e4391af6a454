"""Benchmark QoS 1 publishing: plain paho versus `MqttClient` through the SQLite spool.

Starts its own Mosquitto on a free loopback port (tests/broker.py), then in
one run publishes the same messages three ways and prints one JSON document:

- `paho_direct`: a paho 2.x client, `publish()` then wait for every PUBACK;
- `spool_normal`: `MqttClient` with a file spool, `synchronous=NORMAL`;
- `spool_full`: the same with `synchronous=FULL` (one fsync per message).

Each variant runs twice. The burst run issues all `--messages` publishes
at once, so its latency includes queueing behind earlier messages. The
paced run publishes `--paced-messages` at `--rate` per second, which is
closer to a daemon's load. Throughput is messages divided by the time from
the first publish call to the last acknowledgement. Ack latency is per
message, from the publish call (paho) or the spool `put` (MqttClient) to its
PUBACK.

    python tools/bench_transport.py --messages 5000 --rate 200 --paced-messages 1000 --output bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import paho.mqtt  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge_sdk.transport.client import Delivery, MqttClient  # noqa: E402
from edge_sdk.transport.config import MqttConfig  # noqa: E402
from edge_sdk.transport.spool import Spool  # noqa: E402
from tests.broker import MosquittoBroker  # noqa: E402

TOPIC = "bench/car-1/results"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)

    def pick(fraction: float) -> float:
        return round(values[min(len(values) - 1, int(fraction * len(values)))] * 1000.0, 3)

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": round(values[-1] * 1000.0, 3), "mean_ms": round(statistics.fmean(values) * 1000.0, 3)}


def _pace(index: int, started: float, rate: float | None) -> None:
    """Sleep until message `index` is due when publishing at `rate` messages per second (None: no pacing)."""
    if rate is None:
        return
    delay = started + index / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def bench_paho_direct(broker: MosquittoBroker, payloads: list[bytes], window: int, timeout: float, rate: float | None) -> dict[str, Any]:
    """Publish with a bare paho client and time each PUBACK against its publish call."""
    # on_publish runs while paho holds its message lock, so it only records the ack time.
    # Mids are paired with send times after the run, which is safe below 65536 messages.
    sent_at: dict[int, float] = {}
    acked_at: list[tuple[int, float]] = []
    done = threading.Event()

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        acked_at.append((mid, time.perf_counter()))
        if len(acked_at) == len(payloads):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    started = time.perf_counter()
    for index, payload in enumerate(payloads):
        _pace(index, started, rate)
        before = time.perf_counter()
        info = client.publish(TOPIC, payload, qos=1)
        sent_at[info.mid] = before
    finished = done.wait(timeout)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise TimeoutError(f"paho_direct: only {len(acked_at)} of {len(payloads)} PUBACKs within {timeout} s")
    latencies = [acked - sent_at[mid] for mid, acked in acked_at]
    return {"messages": len(payloads), "seconds": round(elapsed, 3), "messages_per_s": round(len(payloads) / elapsed, 1), "ack_latency": _percentiles(latencies)}


def bench_spool(
    broker: MosquittoBroker, payloads: list[bytes], window: int, timeout: float, rate: float | None, synchronous: str, workdir: Path
) -> dict[str, Any]:
    """Publish through `MqttClient` and a file spool; latency from `put` to PUBACK via `on_ack`."""
    latencies: list[float] = []
    done = threading.Event()

    def on_ack(delivery: Delivery) -> None:
        latencies.append(delivery.latency_s)
        if len(latencies) == len(payloads):
            done.set()

    spool = Spool(workdir / f"spool-{synchronous.lower()}-{rate or 'burst'}.db", synchronous=synchronous)
    config = MqttConfig(host=broker.host, port=broker.port, client_id=f"bench-spool-{synchronous.lower()}", inflight_window=window)
    client = MqttClient(config, spool, on_ack=on_ack)
    client.start()
    if not client.wait_connected(10):
        raise TimeoutError("MqttClient did not connect to the benchmark broker within 10 s")
    started = time.perf_counter()
    for index, payload in enumerate(payloads):
        _pace(index, started, rate)
        client.publish(TOPIC, payload, qos=1)
    put_done = time.perf_counter() - started
    finished = done.wait(timeout)
    elapsed = time.perf_counter() - started
    client.stop(10)
    spool.close()
    if not finished:
        raise TimeoutError(f"spool {synchronous}: only {len(latencies)} of {len(payloads)} PUBACKs within {timeout} s")
    return {
        "messages": len(payloads),
        "seconds": round(elapsed, 3),
        "messages_per_s": round(len(payloads) / elapsed, 1),
        "put_messages_per_s": round(len(payloads) / put_done, 1),
        "ack_latency": _percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per variant, at most 65000 (default 5000)")
    parser.add_argument("--payload-bytes", type=int, default=300, help="payload size in bytes (default 300, about one result envelope)")
    parser.add_argument("--window", type=int, default=32, help="max unacknowledged messages in flight (default 32, the MqttConfig default)")
    parser.add_argument("--timeout", type=float, default=120.0, help="max seconds to wait for the acknowledgements of one variant")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second of the paced run (default 200)")
    parser.add_argument("--paced-messages", type=int, default=1000, help="messages in the paced run (default 1000)")
    parser.add_argument("--output", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 65000:
        parser.error(f"--messages {args.messages} is invalid: use 1 to 65000, because paho message ids wrap at 65535")

    payloads = [(f'{{"index":{i},"pad":"' + "x" * args.payload_bytes)[: args.payload_bytes - 2].encode() + b'"}' for i in range(args.messages)]
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        workdir = Path(tmp)
        with MosquittoBroker(workdir / "mosquitto") as broker:
            results = {}
            for mode, rate, batch in (("burst", None, payloads), ("paced", args.rate, payloads[: args.paced_messages])):
                results[mode] = {
                    "paho_direct": bench_paho_direct(broker, batch, args.window, args.timeout, rate),
                    "spool_normal": bench_spool(broker, batch, args.window, args.timeout, rate, "NORMAL", workdir),
                    "spool_full": bench_spool(broker, batch, args.window, args.timeout, rate, "FULL", workdir),
                }
    report = {
        "command": "python tools/bench_transport.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "messages": args.messages,
        "payload_bytes": args.payload_bytes,
        "window": args.window,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "paho_version": paho.mqtt.__version__,
        "results": results,
        "burst_spool_normal_vs_direct_throughput": round(
            results["burst"]["spool_normal"]["messages_per_s"] / results["burst"]["paho_direct"]["messages_per_s"], 3
        ),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
