"""MaasWorker against a real Mosquitto broker with a real TFLite classifier and real JPEG photos."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_sdk.cloud.inference import TfliteCloudModel
from edge_sdk.cloud.maas import MaasConfig, MaasWorker
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import escalation_properties
from tests.cloud.fleet import PREFIX, FleetVehicle

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tiny generated models committed for the runtime tests (tools/make_runtime_test_models.py).
RUNTIME_MODELS = REPO_ROOT / "tests" / "runtime" / "models"


def request_counts(status: dict) -> dict:
    """Return the request counters of a worker report; empty for a bare presence message."""
    return status.get("request_counts", {})


def is_online(status: dict) -> bool:
    """Tell whether a status is the worker's own report, which leaves after its subscription (the connect-time presence may not)."""
    return status.get("state") == "online" and "request_counts" in status


@pytest.fixture(scope="module")
def model_files(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "coral" / "mobilenet_v2_1.0_224_quant.tflite", data_dir / "coral" / "imagenet_labels.txt"


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> dict[str, bytes]:
    """Real photos as JPEG bytes: the parrot as shipped, the BMP photos re-encoded the way a vehicle encodes frames."""
    parrot = (data_dir / "coral" / "parrot.jpg").read_bytes()
    encoded = {}
    for name in ("grace_hopper", "cat"):
        image = cv2.imread(str(data_dir / "coral" / f"{name}.bmp"))
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        encoded[name] = buffer.tobytes()
    return {"parrot": parrot, **encoded}


def start_worker(model_files, mosquitto, worker_id: str, protocol: str = "5", **settings) -> MaasWorker:
    model_path, labels = model_files
    model = TfliteCloudModel(model_path, labels=labels)
    config = MaasConfig(worker_id=worker_id, prefix=PREFIX, status_interval_s=settings.pop("status_interval_s", 0.5), **settings)
    worker = MaasWorker(model, MqttConfig(host=mosquitto.host, port=mosquitto.port, protocol=protocol), config)
    worker.start(connect_timeout=10.0)
    return worker


@pytest.fixture
def vehicle(mosquitto):
    car = FleetVehicle(mosquitto, "car-1")
    yield car
    car.close()


def test_maas_answers_request_with_model_result(model_files, mosquitto, vehicle, photos) -> None:
    worker = start_worker(model_files, mosquitto, "w1")
    try:
        assert worker.wait_ready(15.0)
        correlation_id = vehicle.send_request(photos["parrot"], frame_id=1)
        assert vehicle.wait_for_replies([correlation_id], timeout=20.0)
    finally:
        worker.stop()
        worker.model.close()

    replies = vehicle.replies[correlation_id]
    assert len(replies) == 1
    reply = replies[0]
    assert reply.error is None
    assert reply.worker_id == "w1"
    assert reply.model.name == "mobilenet_v2_1.0_224_quant"
    assert reply.result["classifications"][0]["label"] == "macaw"
    assert reply.result["classifications"][0]["score"] > 0.9

    properties = vehicle.reply_messages[0].properties
    assert bytes(properties.CorrelationData).decode() == correlation_id


def test_maas_answers_mqtt311_request_from_payload(model_files, mosquitto, photos) -> None:
    car = FleetVehicle(mosquitto, "car-311", protocol="3.1.1")
    worker = start_worker(model_files, mosquitto, "w311", protocol="3.1.1")
    try:
        assert car.wait_for_status("w311", is_online) is not None
        correlation_id = car.send_request(photos["cat"], frame_id=2)
        assert car.wait_for_replies([correlation_id], timeout=20.0)
    finally:
        worker.stop()
        worker.model.close()
        car.close()

    reply = car.replies[correlation_id][0]
    assert reply.error is None
    assert "cat" in reply.result["classifications"][0]["label"]


def test_maas_two_workers_split_requests(model_files, mosquitto, vehicle, photos) -> None:
    workers = [start_worker(model_files, mosquitto, f"split-{n}", max_batch=4, max_wait_ms=10) for n in (1, 2)]
    try:
        for worker in workers:
            assert vehicle.wait_for_status(worker.config.worker_id, is_online) is not None
        images = list(photos.values())
        correlation_ids = [vehicle.send_request(images[i % len(images)], frame_id=i) for i in range(40)]
        assert vehicle.wait_for_replies(correlation_ids, timeout=60.0)
        # Any late duplicate would arrive while the workers drain on stop.
    finally:
        for worker in workers:
            worker.stop()
            worker.model.close()

    assert sorted(vehicle.replies) == sorted(correlation_ids)
    for correlation_id in correlation_ids:
        assert len(vehicle.replies[correlation_id]) == 1, f"{correlation_id} answered {len(vehicle.replies[correlation_id])} times"
    by_worker = Counter(replies[0].worker_id for replies in vehicle.replies.values())
    assert by_worker["split-1"] > 0
    assert by_worker["split-2"] > 0
    assert by_worker["split-1"] + by_worker["split-2"] == 40


def envelope_bytes(vehicle: FleetVehicle, body: dict) -> bytes:
    data = {
        "schema": "edge-sdk/1",
        "kind": "escalations",
        "vehicle_id": vehicle.vehicle_id,
        "message_id": f"raw-{time.monotonic_ns()}",
        "seq": 0,
        "t_wall": time.time(),
        "body": body,
    }
    return json.dumps(data).encode()


def test_maas_malformed_requests_get_error_replies(model_files, mosquitto, vehicle, photos) -> None:
    photo = photos["cat"]
    limit = 2 * len(photo)
    worker = start_worker(model_files, mosquitto, "strict", max_request_bytes=limit)
    try:
        assert vehicle.wait_for_status("strict", is_online) is not None

        not_a_jpeg = vehicle.request_body(b"\xff\xd8" + b"\x00" * 300, "bad-jpeg")
        missing_field = vehicle.request_body(photo, "missing-field")
        del missing_field["source_id"]
        oversized = vehicle.request_body(photo + b"\x00" * limit, "oversized")
        no_reply_topic = vehicle.request_body(photo, "nowhere")
        del no_reply_topic["reply_to"]
        wrong_reply_kind = vehicle.request_body(photo, "wrong-kind")
        wrong_reply_kind["reply_to"] = f"{PREFIX}/car-1/results"

        for body in (not_a_jpeg, missing_field, oversized, no_reply_topic, wrong_reply_kind):
            vehicle.send_raw(envelope_bytes(vehicle, body))
        vehicle.send_raw(b"this is not JSON", properties=escalation_properties("not-json", vehicle.topics.escalation_replies))
        good = vehicle.send_request(photo, frame_id=9)

        assert vehicle.wait_for_replies(["bad-jpeg", "missing-field", "oversized", "not-json", good], timeout=30.0)
        status = vehicle.wait_for_status("strict", lambda s: request_counts(s).get("received", 0) >= 7 and request_counts(s).get("unanswerable", 0) >= 2)
    finally:
        worker.stop()
        worker.model.close()

    errors = {cid: vehicle.replies[cid][0].error for cid in ("bad-jpeg", "missing-field", "oversized", "not-json")}
    assert "does not decode as a JPEG" in errors["bad-jpeg"]
    assert "body.source_id" in errors["missing-field"]
    assert "above the worker's limit" in errors["oversized"]
    assert "not JSON" in errors["not-json"]
    for cid in errors:
        assert vehicle.replies[cid][0].result is None
        assert vehicle.replies[cid][0].worker_id == "strict"
    assert "nowhere" not in vehicle.replies
    assert "wrong-kind" not in vehicle.replies
    assert vehicle.replies[good][0].error is None
    assert "cat" in vehicle.replies[good][0].result["classifications"][0]["label"]
    assert status is not None
    assert status["request_counts"]["error_replies"] == 4
    assert status["request_counts"]["answered"] == 1


def color_jpeg(bgr: tuple[int, int, int]) -> bytes:
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    image[:] = bgr
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buffer.tobytes()


def test_maas_groups_requests_into_batches(mosquitto, vehicle) -> None:
    # A real TFLite classifier with a dynamic batch dimension: it runs each batch in one invoke.
    model = TfliteCloudModel(RUNTIME_MODELS / "dominant_color_uint8_zp128.tflite", labels=RUNTIME_MODELS / "dominant_color_labels.txt")
    config = MaasConfig(worker_id="batcher", prefix=PREFIX, max_batch=4, max_wait_ms=500, status_interval_s=0.5)
    worker = MaasWorker(model, MqttConfig(host=mosquitto.host, port=mosquitto.port), config)
    worker.start(connect_timeout=10.0)
    colors = {"red": (0, 0, 230), "green": (0, 230, 0), "blue": (230, 0, 0)}
    expected = {}
    try:
        assert vehicle.wait_for_status("batcher", is_online) is not None
        for i in range(8):
            name = list(colors)[i % 3]
            expected[vehicle.send_request(color_jpeg(colors[name]), frame_id=i)] = name
        assert vehicle.wait_for_replies(list(expected), timeout=30.0)
        status = worker.status()
    finally:
        worker.stop()
        model.close()

    sizes = {int(size): count for size, count in status["batch_sizes"].items()}
    assert sum(size * count for size, count in sizes.items()) == 8
    assert max(sizes) > 1
    assert max(sizes) <= 4
    assert status["latency_ms"]["count"] == 8
    for correlation_id, name in expected.items():
        result = vehicle.replies[correlation_id][0].result
        assert result["classifications"][0]["label"] == name
    batched = [vehicle.replies[cid][0].result.get("extra", {}).get("batch_size", 1) for cid in expected]
    assert max(batched) > 1


def test_maas_does_not_batch_fixed_batch_model(model_files, mosquitto) -> None:
    model_path, labels = model_files
    model = TfliteCloudModel(model_path, labels=labels)
    worker = MaasWorker(model, MqttConfig(host=mosquitto.host, port=mosquitto.port), MaasConfig(worker_id="single", prefix=PREFIX, max_batch=8))
    try:
        assert model.max_batch == 1
        assert worker.max_batch == 1
        assert worker.status()["max_batch"] == 1
    finally:
        worker.stop()
        model.close()


def spawn_worker(mosquitto, worker_id: str, *extra: str) -> subprocess.Popen:
    """Start `edge-sdk maas serve` in a subprocess with the batch-capable color classifier."""
    command = [
        sys.executable, "-m", "edge_sdk", "maas", "serve",
        "--model", str(RUNTIME_MODELS / "dominant_color_uint8_zp128.tflite"), "--labels", str(RUNTIME_MODELS / "dominant_color_labels.txt"),
        "--broker", f"mqtt://{mosquitto.host}:{mosquitto.port}",
        "--prefix", PREFIX, "--worker-id", worker_id, "--status-interval", "0.3",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_maas_killed_worker_loses_no_request(mosquitto, vehicle) -> None:
    # The subprocess worker keeps its requests in a batch that waits 60 s, so they are
    # received but neither replied to nor acknowledged when it is killed.
    doomed = spawn_worker(mosquitto, "doomed", "--max-batch", "64", "--max-wait-ms", "60000")
    model = TfliteCloudModel(RUNTIME_MODELS / "dominant_color_uint8_zp128.tflite", labels=RUNTIME_MODELS / "dominant_color_labels.txt")
    survivor = MaasWorker(model, MqttConfig(host=mosquitto.host, port=mosquitto.port), MaasConfig(worker_id="survivor", prefix=PREFIX, status_interval_s=0.5))
    survivor.start(connect_timeout=10.0)
    restarted = None
    try:
        assert vehicle.wait_for_status("doomed", is_online, timeout=30.0) is not None
        assert vehicle.wait_for_status("survivor", is_online) is not None
        correlation_ids = [vehicle.send_request(color_jpeg((0, 230, 0)), frame_id=i) for i in range(20)]
        held = vehicle.wait_for_status(
            "doomed", lambda s: request_counts(s).get("outstanding", 0) > 0 and request_counts(s)["outstanding"] + vehicle.reply_count() >= 20
        )
        assert held is not None, "the subprocess worker never reported queued requests"

        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        # The broker publishes the killed worker's last will.
        assert vehicle.wait_for_status("doomed", lambda s: s.get("state") == "offline") is not None
        answered_before_restart = vehicle.reply_count()
        assert answered_before_restart < 20

        restarted = spawn_worker(mosquitto, "doomed")
        assert vehicle.wait_for_replies(correlation_ids, timeout=60.0), f"answered {vehicle.reply_count()} of 20"
    finally:
        survivor.stop()
        survivor.model.close()
        for process in (doomed, restarted):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
            if process is not None and process.stderr:
                process.stderr.close()

    assert set(vehicle.replies) == set(correlation_ids)
    workers = Counter(replies[0].worker_id for replies in vehicle.replies.values())
    assert workers["doomed"] == 20 - answered_before_restart
    for replies in vehicle.replies.values():
        assert replies[0].result["classifications"][0]["label"] == "green"


def test_maas_model_failure_gets_error_replies(mosquitto, vehicle) -> None:
    # A real model whose invoke fails at run time on bright frames (a gather index out of range).
    model = TfliteCloudModel(RUNTIME_MODELS / "gather_out_of_range.tflite", mean=0, std=255, task="classification")
    worker = MaasWorker(model, MqttConfig(host=mosquitto.host, port=mosquitto.port), MaasConfig(worker_id="fragile", prefix=PREFIX, status_interval_s=0.5))
    worker.start(connect_timeout=10.0)
    try:
        assert vehicle.wait_for_status("fragile", is_online) is not None
        failing = vehicle.send_request(color_jpeg((200, 200, 200)), frame_id=1)
        assert vehicle.wait_for_replies([failing], timeout=20.0)
        working = vehicle.send_request(color_jpeg((0, 0, 0)), frame_id=2)
        assert vehicle.wait_for_replies([working], timeout=20.0)
        status = worker.status()
    finally:
        worker.stop()
        model.close()

    assert "failed" in vehicle.replies[failing][0].error
    assert vehicle.replies[failing][0].result is None
    assert vehicle.replies[working][0].error is None
    assert vehicle.replies[working][0].result["classifications"][0]["class_id"] == 0
    assert status["request_counts"]["model_failures"] == 1
    assert status["request_counts"]["error_replies"] == 1
    assert status["request_counts"]["answered"] == 1
