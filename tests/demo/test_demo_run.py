"""`edge-sdk demo` end to end: embedded broker, MaaS worker, ingest, vehicle simulator and daemon in one run."""

from __future__ import annotations

import json
import re

import pytest

from edge_sdk.cli import main
from edge_sdk.cloud.records import KIND_RESULT
from edge_sdk.cloud.storage import SqliteStorage
from edge_sdk.demo.render import render_clip
from edge_sdk.demo.run import EDGE_PACKAGE, DemoOptions, run_demo

pytest.importorskip("amqtt")


def _check_report(out_dir, report):
    data = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert data["passed"] is True
    assert data["errors"] == []
    assert data["frames_processed"] > 0
    assert data["frames_stored"] > 0
    assert data["escalations_answered"] >= 1
    assert data["escalations_sent"] >= data["escalations_answered"] + data["escalations_timed_out"]
    assert data["escalations_answered"] == data["extra"]["escalation"]["answered"]
    assert data["frames_stored"] == report.frames_stored
    with SqliteStorage(out_dir / "telemetry.sqlite") as storage:
        assert storage.count(KIND_RESULT, "demo-car") == data["results_stored"]
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<svg ", html)) == 3
    assert "edge-sdk run --config" in html
    return data


def test_demo_runs_built_in_clip(tmp_path):
    out_dir = tmp_path / "demo"
    report = run_demo(DemoOptions(duration_s=15.0, out_dir=out_dir, live=False))
    data = _check_report(out_dir, report)
    assert data["extra"]["vehicle_simulator"] == "running"
    assert len(data["labels"]) >= 3
    assert data["escalations_sent"] >= data["escalations_answered"]
    assert (out_dir / "road.mp4").is_file()


def test_demo_runs_user_source_once(tmp_path):
    clip = render_clip(tmp_path / "mine.mp4", seconds=5.0, fps=15.0, seed=3)
    out_dir = tmp_path / "demo"
    report = run_demo(DemoOptions(duration_s=60.0, out_dir=out_dir, source=clip.path, model=EDGE_PACKAGE, live=False, vehicle=False, escalate_below=1.0))
    data = _check_report(out_dir, report)
    assert data["frames_processed"] <= clip.frame_count
    assert data["duration_s"] < 60.0
    assert data["extra"]["vehicle_simulator"] == "off"


def test_demo_uses_external_broker(tmp_path, mosquitto):
    out_dir = tmp_path / "demo"
    report = run_demo(DemoOptions(duration_s=12.0, out_dir=out_dir, broker_url=mosquitto.url, live=False, vehicle=False))
    data = _check_report(out_dir, report)
    assert mosquitto.url in data["broker"]


def test_demo_prepare_only_writes_valid_config(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--prepare-only", "--out", str(out_dir)]) == 0
    assert (out_dir / "road.mp4").is_file()
    assert (out_dir / "vehicle" / "demo_gps.nmea").is_file()
    assert main(["run", "--config", str(out_dir / "vehicle.yaml"), "--check"]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--duration", "0"], ["--escalate-below", "1.5"]])
def test_demo_rejects_bad_option(tmp_path, capsys, option):
    assert main(["demo", "--out", str(tmp_path), *option]) == 1
    assert "is invalid" in capsys.readouterr().err


def test_demo_reports_missing_model(tmp_path, capsys):
    missing = tmp_path / "no-such-package"
    assert main(["demo", "--out", str(tmp_path / "demo"), "--model", str(missing), "--no-live"]) == 1
    assert str(missing) in capsys.readouterr().err


def test_demo_runs_real_dashcam_detector(tmp_path, data_dir):
    out_dir = tmp_path / "demo"
    options = DemoOptions(
        duration_s=60.0,
        out_dir=out_dir,
        source=data_dir / "video" / "solidWhiteRight.mp4",
        model=data_dir / "detection" / "detect.tflite",
        labels=data_dir / "detection" / "COCO_labels.txt",
        label_offset=1,
        live=False,
    )
    report = run_demo(options)
    data = _check_report(out_dir, report)
    assert data["labels"].get("car", 0) > 0
    assert data["frames_processed"] <= 221
