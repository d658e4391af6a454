"""The daemon on the real clip with the real detector, publishing to a real Mosquitto broker."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge_sdk.daemon.config import load_config
from edge_sdk.daemon.service import Daemon
from tests.broker import free_port
from tests.conftest import REPO_ROOT
from tests.daemon.support import Collector, write_config

CLIP_FRAMES = 221


@pytest.fixture
def collector(mosquitto):
    collector = Collector(mosquitto.host, mosquitto.port).start()
    yield collector
    collector.stop()


def run_daemon(config_path: Path) -> tuple[Daemon, int]:
    daemon = Daemon(load_config(config_path))
    return daemon, daemon.run()


def test_daemon_publishes_one_result_per_frame(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite")
    daemon, exit_code = run_daemon(config)
    assert exit_code == 0
    assert collector.wait_for(lambda c: len(c.frames()) >= CLIP_FRAMES, 30)

    frames = collector.frames()
    seqs = [m["body"]["frame_seq"] for m in frames]
    assert seqs == list(range(CLIP_FRAMES))
    assert len({m["message_id"] for m in frames}) == CLIP_FRAMES
    assert all(m["vehicle_id"] == "car-1" for m in frames)
    with_car = [m for m in frames if any(d["label"] == "car" for d in m["body"]["result"]["detections"])]
    assert len(with_car) > CLIP_FRAMES // 2, f"cars found in only {len(with_car)} of {CLIP_FRAMES} frames"
    assert daemon.metrics.counters.get("results_published") == CLIP_FRAMES


def test_daemon_publishes_events_summary_and_status(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite")
    _, exit_code = run_daemon(config)
    assert exit_code == 0
    assert collector.wait_for(lambda c: any(m["body"].get("state") == "offline" for m in c.of_kind("status")), 30)

    events = [m["body"] for m in collector.of_kind("events")]
    new = [e for e in events if e["event"] == "new"]
    ended = [e for e in events if e["event"] == "end"]
    assert any(e["label"] == "car" for e in new)
    assert {e["object_id"] for e in ended} == {e["object_id"] for e in new}, "every new object gets an end event"

    summaries = [m["body"] for m in collector.of_kind("results") if m["body"]["type"] == "summary"]
    assert sum(s["frames"] for s in summaries) == CLIP_FRAMES
    assert summaries[-1]["objects_by_label"].get("car", 0) > 0 or any(s["objects_by_label"].get("car") for s in summaries)

    health = [m["body"] for m in collector.of_kind("status") if "frames_in" in m["body"]]
    assert health, "no status record with health fields"
    last = health[-1]
    assert last["frames_in"] == CLIP_FRAMES
    assert last["drops"] == 0
    assert last["inference_ms"]["p50"] > 0
    assert last["sources"]["front"]["state"] == "ended"
    assert "spool" in last
    assert "queues" in last
    assert "cpu_temperature_c" in last


def test_daemon_slow_model_drops_frames_never_repeats(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", source={"pace": "fast"})
    daemon, exit_code = run_daemon(config)
    assert exit_code == 0
    stats = daemon._sources["front"].stats()
    assert collector.wait_for(lambda c: len(c.frames()) >= stats.delivered, 30)

    seqs = [m["body"]["frame_seq"] for m in collector.frames()]
    assert len(seqs) == len(set(seqs))
    assert seqs == sorted(seqs)
    assert stats.dropped > 0, "decoding at full speed should outrun the detector"
    assert stats.delivered + stats.dropped == stats.captured == CLIP_FRAMES


def test_daemon_stops_on_request(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", source={"loop": True, "pace": "realtime"})
    daemon = Daemon(load_config(config))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()))
    thread.start()
    assert collector.wait_for(lambda c: len(c.frames()) >= 5, 30)
    daemon.request_stop()
    thread.join(30)
    assert not thread.is_alive()
    assert result == [0]
    assert collector.wait_for(lambda c: any(m["body"].get("state") == "offline" for m in c.of_kind("status")), 10)


@pytest.fixture
def vehicle_sim_module():
    return importlib.import_module("firmware_bridge.simulator")


def test_daemon_attaches_vehicle_state_and_alerts(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector, vehicle_sim_module) -> None:
    sim = vehicle_sim_module.VehicleSim(nmea_log=data_dir / "nmea" / "haicom-305N.log", mcu=True, nmea_interval_s=0.01, repeat_nmea=True)
    paths = sim.paths()
    extra = f"""
[vehicle.gps]
url = "{paths['gps']}"

[vehicle.mcu]
url = "{paths['mcu']}"

[[alerts]]
label = "car"
min_score = 0.5
kind = "vehicle_ahead"
severity = "warning"
text_id = 7
cooldown_s = 60
"""
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", extra=extra)
    with sim:
        _, exit_code = run_daemon(config)
        alerts = list(sim.workers["mcu"].alerts)
    assert exit_code == 0
    assert collector.wait_for(lambda c: len(c.frames()) >= CLIP_FRAMES, 30)

    vehicle = [m["body"].get("vehicle") for m in collector.frames()]
    with_fix = [v for v in vehicle if v and v.get("gps") and v["gps"].get("latitude") is not None]
    assert with_fix, "no result carried a GPS position"
    assert all(v["gps"]["age_s"] >= 0 for v in with_fix)
    events = [m["body"] for m in collector.of_kind("events")]
    assert all("vehicle" in e for e in events)
    assert len(alerts) == 1, f"one alert expected within the 60 s cooldown, got {alerts}"
    assert alerts[0].kind.name == "VEHICLE_AHEAD"
    assert alerts[0].text_id == 7
    health = [m["body"] for m in collector.of_kind("status") if "vehicle_links" in m["body"]]
    assert health and set(health[-1]["vehicle_links"]) == {"gps", "mcu"}


def test_cli_file_without_frames_fails_clearly(tmp_path: Path, data_dir: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    # Nothing listens on this port; the daemon fails on the source before it needs the broker.
    config = write_config(tmp_path / "vehicle.toml", data_dir, free_port(), spool=tmp_path / "spool.sqlite")
    config.write_text(config.read_text().replace(str(data_dir / "video" / "solidWhiteRight.mp4"), str(broken)))
    completed = subprocess.run(
        [sys.executable, "-m", "edge_sdk", "run", "--config", str(config)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert completed.returncode == 1
    assert "sources[0] ('front')" in completed.stderr
    assert f"{broken} decoded zero frames" in completed.stderr


def test_daemon_reports_unreachable_camera(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    # Nothing listens on this loopback port, so every open of the stream fails at once.
    extra = f"""
[[sources]]
id = "rear"
kind = "url"
url = "rtsp://127.0.0.1:{free_port()}/stream"
open_timeout_s = 1.0
reopen_initial_s = 0.1
reopen_max_s = 0.5
model = "detector"
"""
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", source={"loop": True, "pace": "realtime"}, extra=extra)
    daemon = Daemon(load_config(config))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()))
    thread.start()

    def rear_reported_lost(c: Collector) -> bool:
        records = [m["body"] for m in c.of_kind("status") if "sources" in m["body"]]
        return any(r["sources"]["rear"]["state"] == "lost" and r["sources"]["rear"]["last_error"] for r in records)

    try:
        assert collector.wait_for(rear_reported_lost, 30)
        assert collector.wait_for(lambda c: len(c.frames()) >= 5, 30), "the working source stopped with the broken one"
    finally:
        daemon.request_stop()
        thread.join(30)
    assert result == [0]
    assert {m["body"]["source_id"] for m in collector.frames()} == {"front"}
