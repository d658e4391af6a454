"""The cloud side end to end: a vehicle escalates, a MaaS worker replies, ingest stores it all, the CLI reports it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from edge_sdk.cli import main
from edge_sdk.cloud.inference import TfliteCloudModel
from edge_sdk.cloud.ingest import IngestConfig, IngestSubscriber
from edge_sdk.cloud.maas import MaasConfig, MaasWorker
from edge_sdk.cloud.records import KIND_ESCALATION, KIND_REPLY, KIND_RESULT, KIND_WORKER_STATUS, MessageQuery
from edge_sdk.cloud.storage import SqliteStorage
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.topics import MessageKind
from tests.cloud.fleet import EDGE_RESULT, PREFIX, FleetVehicle

RESULTS = 12
ESCALATED = 3


def test_cloud_pipeline_stores_and_reports(data_dir: Path, mosquitto, tmp_path: Path, capsys) -> None:
    db_path = tmp_path / "fleet.db"
    mqtt_config = MqttConfig(host=mosquitto.host, port=mosquitto.port)
    storage = SqliteStorage(db_path)
    ingest = IngestSubscriber(storage, IngestConfig(prefix=PREFIX, client_id="ingest-e2e"), mqtt_config)
    ingest.start(connect_timeout=10.0)
    model = TfliteCloudModel(data_dir / "coral" / "mobilenet_v2_1.0_224_quant.tflite", labels=data_dir / "coral" / "imagenet_labels.txt")
    worker = MaasWorker(model, mqtt_config, MaasConfig(worker_id="e2e", prefix=PREFIX, status_interval_s=0.5))
    worker.start(connect_timeout=10.0)
    vehicle = FleetVehicle(mosquitto, "car-e2e")
    jpeg = (data_dir / "coral" / "parrot.jpg").read_bytes()
    try:
        assert vehicle.wait_for_status("e2e", lambda status: "request_counts" in status) is not None
        # Ingest sends all its filters in one SUBSCRIBE, so a stored worker status means every filter is active.
        assert ingest.wait_for(lambda counts: counts["stored.worker_status"] >= 1, timeout=20.0)
        correlation_ids = [vehicle.send_request(jpeg, frame_id=frame) for frame in range(ESCALATED)]
        assert vehicle.wait_for_replies(correlation_ids, timeout=30.0)

        # Bodies as the daemon publishes them: one edge result per frame, and for each
        # escalated frame a second result with source "cloud" holding both results.
        for frame in range(RESULTS):
            body = {"type": "frame", "source": "edge", "frame_id": frame, "result": EDGE_RESULT, "latency_ms": {"inference": 3.6}}
            vehicle.client.publish(vehicle.topics.results, vehicle.builder.build(MessageKind.RESULTS, body), qos=1)
        for frame, correlation_id in enumerate(correlation_ids):
            reply = vehicle.replies[correlation_id][0]
            body = {
                "type": "frame", "source": "cloud", "frame_id": frame, "correlation_id": correlation_id,
                "edge": EDGE_RESULT, "cloud": reply.result, "worker_id": reply.worker_id, "rtt_ms": 120.0 + frame,
            }
            vehicle.client.publish(vehicle.topics.results, vehicle.builder.build(MessageKind.RESULTS, body), qos=1)
        expected = RESULTS + 3 * ESCALATED
        assert ingest.wait_for(lambda counts: counts["stored.result"] >= RESULTS + ESCALATED, timeout=20.0)
        assert ingest.wait_for(lambda counts: counts["stored.reply"] >= ESCALATED, timeout=20.0)
        assert ingest.wait_for(lambda counts: counts["stored.escalation"] >= ESCALATED, timeout=20.0)
        assert ingest.wait_for(lambda counts: counts["stored.worker_status"] >= 1, timeout=20.0)
    finally:
        vehicle.close()
        worker.stop()
        model.close()
        ingest.stop()

    assert storage.count(vehicle_id="car-e2e") == expected
    escalation = next(storage.query(MessageQuery(kind=KIND_ESCALATION)))
    assert "image_jpeg" not in escalation.body
    assert escalation.details["image_bytes"] == len(jpeg)
    replies = list(storage.query(MessageQuery(kind=KIND_REPLY)))
    assert {reply.details["correlation_id"] for reply in replies} == set(correlation_ids)
    assert all(reply.label == "macaw" for reply in replies)
    assert all(reply.details["worker_id"] == "e2e" for reply in replies)
    assert storage.count(kind=KIND_WORKER_STATUS, vehicle_id="e2e") >= 1
    assert storage.vehicles() == ["car-e2e"]
    storage.close()

    assert main(["telemetry", "summary", "--db", str(db_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary) == 1
    car = summary[0]
    assert car["vehicle_id"] == "car-e2e"
    assert car["counts"][KIND_RESULT] == RESULTS + ESCALATED
    assert car["edge_frames"] == RESULTS
    assert car["inference_ms"]["p50"] == 3.6
    assert car["escalation_rate"] == round(ESCALATED / RESULTS, 4)
    assert car["replied_rate"] == 1.0
    assert car["cloud_results"] == ESCALATED
    assert car["cloud_rtt_ms"]["p50"] == 121.0
    assert car["cloud_labels"] == {"macaw": ESCALATED}
    assert car["labels"] == {"unsure": RESULTS}

    csv_path = tmp_path / "replies.csv"
    assert main(["telemetry", "export", "--db", str(db_path), "--kind", "reply", "--format", "csv", "--output", str(csv_path)]) == 0
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert len(rows) == ESCALATED
    assert {row["correlation_id"] for row in rows} == set(correlation_ids)

    capsys.readouterr()
    assert main(["telemetry", "query", "--db", str(db_path), "--label", "macaw", "--kind", "result"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == ESCALATED
    assert all(line["source"] == "cloud" for line in lines)


def test_telemetry_cli_rejects_missing_db_and_bad_time(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing.db"
    assert main(["telemetry", "summary", "--db", str(missing)]) == 1
    assert "not found" in capsys.readouterr().err
    assert not missing.exists()

    SqliteStorage(missing).close()
    assert main(["telemetry", "query", "--db", str(missing), "--since", "yesterday"]) == 1
    assert "is not a time" in capsys.readouterr().err
    assert main(["telemetry", "query", "--db", str(missing), "--kind", "photos"]) == 1
    assert "unknown" in capsys.readouterr().err


def test_maas_cli_rejects_unloadable_model(data_dir: Path, capsys) -> None:
    code = main(["maas", "serve", "--model", str(data_dir / "coral" / "model_invoking_error.tflite"), "--broker", "mqtt://127.0.0.1:1"])
    assert code == 1
    assert "fake-op-double" in capsys.readouterr().err

    assert main(["maas", "serve", "--model", str(data_dir / "coral" / "missing.tflite")]) == 1
    assert "not found" in capsys.readouterr().err
