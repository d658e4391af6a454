"""The whole system on real input, every part real.

The real dashcam clip runs through the daemon with the real SSD detector; the
vehicle simulator replays a real GPS capture and a real minute of RAV4 CAN
traffic (decoded with its DBC) over pseudo-terminals; a MaaS worker answers
escalations with the real MobileNet v2 classifier; the ingest subscriber
stores everything in SQLite; all of it talks through a real Mosquitto broker.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edge_sdk.cloud.inference import load_cloud_model
from edge_sdk.cloud.ingest import IngestConfig, IngestSubscriber
from edge_sdk.cloud.maas import MaasConfig, MaasWorker
from edge_sdk.cloud.records import MessageQuery
from edge_sdk.cloud.storage import SqliteStorage
from edge_sdk.daemon.config import parse_config
from edge_sdk.daemon.service import Daemon
from edge_sdk.transport.config import MqttConfig
from firmware_bridge.mcu_protocol import Gear, VehicleState
from firmware_bridge.simulator import VehicleSim

PREFIX = "fleet"
VEHICLE_ID = "car-7"
CLIP_FRAMES = 221
CAN_SIGNALS = {
    "steering_angle": ["STEER_ANGLE_SENSOR.STEER_ANGLE", "STEER_ANGLE_SENSOR.STEER_FRACTION"],
    "wheel_speed_fl": "WHEEL_SPEEDS.WHEEL_SPEED_FL",
}


def _daemon_config(data_dir: Path, tmp_path: Path, broker: Any, paths: dict[str, str]) -> dict[str, Any]:
    return {
        "vehicle_id": VEHICLE_ID,
        "status_interval_s": 1.0,
        "shutdown_timeout_s": 15.0,
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"edge-sdk-{VEHICLE_ID}", "topic_prefix": PREFIX},
        "spool": {"path": str(tmp_path / "spool.sqlite")},
        "uplink": {"bytes_per_s": 10_000_000, "bytes_per_day": 10_000_000_000},
        "models": {
            "detector": {
                "path": str(data_dir / "detection" / "detect.tflite"),
                "labels": str(data_dir / "detection" / "COCO_labels.txt"),
                "label_offset": 1,
                "num_threads": 1,
                # Frames whose best detection scores below 0.6 go to the cloud.
                "escalation": {"enabled": True, "below_score": 0.6, "max_side": 320, "timeout_s": 20.0},
            }
        },
        "sources": [
            {"id": "front", "kind": "file", "model": "detector", "path": str(data_dir / "video" / "solidWhiteRight.mp4"), "pace": "lockstep"}
        ],
        "vehicle": {
            "gps": {"url": paths["gps"]},
            "can": {
                "url": paths["can"],
                "dbc": str(data_dir / "can" / "toyota_rav4_2017_pt_generated.dbc"),
                "signals": CAN_SIGNALS,
                "speed_signal": "wheel_speed_fl",
            },
            "mcu": {"url": paths["mcu"]},
        },
    }


def test_system_stores_real_clip_once(data_dir: Path, tmp_path: Path, mosquitto) -> None:
    broker = MqttConfig(host=mosquitto.host, port=mosquitto.port)
    storage = SqliteStorage(tmp_path / "telemetry.sqlite")
    ingest = IngestSubscriber(storage, IngestConfig(prefix=PREFIX, client_id="system-test-ingest"), broker)
    cloud_model = load_cloud_model(
        data_dir / "coral" / "mobilenet_v2_1.0_224_quant.tflite", labels=data_dir / "coral" / "imagenet_labels.txt"
    )
    worker = MaasWorker(cloud_model, broker, MaasConfig(worker_id="system-test-worker", prefix=PREFIX))
    sim = VehicleSim(
        nmea_log=data_dir / "nmea" / "haicom-305N.log",
        can_log=data_dir / "can" / "rav4_2017_bus0_dbc_ids.candump.log",
        mcu=True,
        nmea_interval_s=0.01,
        can_speed=1.0,
        repeat_nmea=True,
        mcu_state=lambda: VehicleState(88.0, -2.5, Gear.DRIVE, 0),
    )
    try:
        ingest.start(connect_timeout=10)
        assert ingest.wait_ready(10)
        worker.start(connect_timeout=10)
        assert worker.wait_ready(10)
        with sim:
            daemon = Daemon(parse_config(_daemon_config(data_dir, tmp_path, mosquitto, dict(sim.paths())), base_dir=tmp_path))
            exit_code = daemon.run()
        counters = daemon.metrics.counters.snapshot()
        expected = counters.get("results_published", 0) + counters.get("cloud_results_published", 0) + counters.get("summaries_published", 0)
        assert ingest.wait_for(lambda counts: counts.get("stored.result", 0) >= expected, 60)
    finally:
        worker.stop()
        ingest.stop()
        cloud_model.close()

    assert exit_code == 0
    results = [m.body for m in storage.query(MessageQuery(vehicle_id=VEHICLE_ID, kind="result"))]
    edge = [b for b in results if b.get("type") == "frame" and b.get("source") == "edge"]
    cloud = [b for b in results if b.get("type") == "frame" and b.get("source") == "cloud"]

    # Every frame of the clip is stored exactly once as an edge result, in order.
    seqs = [b["frame_seq"] for b in edge]
    assert len(seqs) == CLIP_FRAMES
    assert len(set(seqs)) == CLIP_FRAMES
    assert seqs == sorted(seqs)
    assert sum(1 for b in edge if any(d["label"] == "car" for d in b["result"]["detections"])) > CLIP_FRAMES // 2

    # Each result carries the vehicle state read from the real GPS and CAN logs.
    # The links open while the first frames are inferred, so only the first few results may lack a part.
    for part in ("gps", "mcu", "can"):
        first = next(i for i, b in enumerate(edge) if b["vehicle"].get(part))
        assert first < 30, f"no {part} state before frame {first}"
        for body in edge[first:]:
            state = body["vehicle"][part]
            ages = [signal["age_s"] for signal in state.values()] if part == "can" else [state["age_s"]]
            assert min(ages) >= 0
    for body in edge:
        can = body["vehicle"].get("can")
        if can:
            assert set(can) == set(CAN_SIGNALS)
            assert can["wheel_speed_fl"]["unit"] == "km/h"
    with_fix = [b for b in edge if (b["vehicle"].get("gps") or {}).get("latitude") is not None]
    assert len(with_fix) > CLIP_FRAMES // 2

    # The worker replied to every escalated frame, and each reply was stored with both results.
    escalated = {b["escalation"]["correlation_id"] for b in edge if "escalation" in b}
    assert escalated
    answered = {b["correlation_id"] for b in cloud if b.get("cloud") is not None}
    assert answered == escalated
    assert all(b["rtt_ms"] > 0 and b["worker_id"] == "system-test-worker" for b in cloud)
    assert storage.dead_letters() == []

    # The daemon's own health records show nothing lost or dropped.
    statuses = [m.body for m in storage.query(MessageQuery(vehicle_id=VEHICLE_ID, kind="status")) if "frames_in" in m.body]
    assert statuses
    last = statuses[-1]
    assert last["frames_in"] == CLIP_FRAMES
    assert last["frames_out"] == CLIP_FRAMES
    assert last["drops"] == 0
    assert last["spool"]["depth"] == 0
    assert sum(last["spool"]["dropped"].values()) == 0
    assert last["escalation"]["sent"] == last["escalation"]["answered"] == len(escalated)
    assert last["escalation"].get("timed_out", 0) == 0
    for name, link in last["vehicle_links"].items():
        assert link["state"] == "open", name
        assert link["checksum_errors"] == 0, name
    assert Counter(b["frame_seq"] for b in cloud).most_common(1)[0][1] == 1
