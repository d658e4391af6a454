"""Warnings the daemon logs once: labels no model produces (at start) and messages left in the spool (at exit)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from edge_sdk.daemon.config import load_config, parse_config
from edge_sdk.daemon.label_coverage import find_unknown_labels, warn_unknown_labels
from edge_sdk.daemon.service import Daemon, load_model
from tests.broker import free_port
from tests.daemon.support import write_config


def detector_config(data_dir: Path, events_labels: list[str], *, labels_file: bool) -> dict:
    model = {"path": str(data_dir / "detection" / "detect.tflite"), "num_threads": 1}
    if labels_file:
        model.update(labels=str(data_dir / "detection" / "COCO_labels.txt"), label_offset=1)
    return {
        "vehicle_id": "car-1",
        "models": {"detector": model},
        "sources": [{"id": "front", "kind": "file", "path": str(data_dir / "video" / "solidWhiteRight.mp4"), "model": "detector"}],
        "events": {"labels": events_labels},
    }


def test_unknown_labels_keeps_fallback_names() -> None:
    label_lists = {"a": ["car", "person"], "b": None}
    assert find_unknown_labels(("car", "unicorn", "class_3", "unicorn", "truck"), label_lists) == ["unicorn", "truck"]
    assert find_unknown_labels((), label_lists) == []


def check_labels(data: dict, caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """Load the real model of `data` and run the label check; return (unknown labels, warning messages)."""
    config = parse_config(data)
    model = load_model("detector", config.models["detector"], config)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_sdk.daemon.label_coverage"):
            unknown = warn_unknown_labels(config, {"detector": model})
    finally:
        model.close()
    return unknown, [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_bare_model_without_labels_warns(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    unknown, warnings = check_labels(detector_config(data_dir, ["car", "person"], labels_file=False), caplog)
    assert unknown == ["car", "person"]
    assert len(warnings) == 1
    assert "events.labels 'car', 'person'" in warnings[0]
    assert "detector: no label list" in warnings[0]
    assert "models.<name>.labels" in warnings[0]


def test_model_with_labels_warns_only_unknown(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # This COCO labels file spells the class "stopsign", so "stop sign" never matches.
    unknown, warnings = check_labels(detector_config(data_dir, ["car", "stopsign", "stop sign"], labels_file=True), caplog)
    assert unknown == ["stop sign"]
    assert len(warnings) == 1
    assert "'stop sign'" in warnings[0]
    assert "'car'" not in warnings[0]
    assert "detector: 91 labels" in warnings[0]


def test_model_with_known_labels_is_quiet(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    unknown, warnings = check_labels(detector_config(data_dir, ["car", "person", "class_7"], labels_file=True), caplog)
    assert unknown == []
    assert warnings == []


def test_escalation_labels_checked_per_model(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = detector_config(data_dir, ["car"], labels_file=True)
    data["models"]["detector"]["escalation"] = {"enabled": True, "labels": ["stopsign", "stop sign"]}
    unknown, warnings = check_labels(data, caplog)
    assert unknown == ["stop sign"]
    assert len(warnings) == 1
    assert "models.detector.escalation.labels 'stop sign'" in warnings[0]
    assert "events.labels" not in warnings[0]


def run_until_results(daemon: Daemon, count: int) -> tuple[bool, list[int]]:
    """Run the daemon in a thread until it published `count` results, then stop it; return (reached, exit codes)."""
    reached = threading.Event()
    exit_codes: list[int] = []
    thread = threading.Thread(target=lambda: exit_codes.append(daemon.run()))
    thread.start()
    try:
        while not reached.is_set() and thread.is_alive():
            if daemon.metrics.counters.get("results_published") >= count:
                reached.set()
            reached.wait(0.2)
    finally:
        daemon.request_stop()
        thread.join(60)
    return reached.is_set(), exit_codes


def test_exit_with_reachable_broker_is_quiet(tmp_path: Path, data_dir: Path, mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", source={"loop": True})
    with caplog.at_level(logging.WARNING):
        reached, exit_codes = run_until_results(Daemon(load_config(config)), 3)
    assert reached, "the daemon published no results"
    assert exit_codes == [0]
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert not [message for message in messages if "remain unsent" in message], messages


def test_exit_with_unreachable_broker_warns(tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool.sqlite"
    # Nothing listens on this loopback port, so every message stays in the spool.
    config = write_config(
        tmp_path / "vehicle.toml", data_dir, free_port(), spool=spool, source={"loop": True}, extra='[events]\nlabels = ["car", "unicorn"]\n'
    )
    with caplog.at_level(logging.WARNING):
        reached, exit_codes = run_until_results(Daemon(load_config(config)), 3)
    assert reached, "the daemon published no results"
    assert exit_codes == [0]

    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    unsent = [message for message in messages if "remain unsent" in message]
    assert len(unsent) == 1, messages
    assert str(spool) in unsent[0]
    assert "will be sent on the next start" in unsent[0]
    assert "cannot reach broker" in unsent[0]
    label_warnings = [message for message in messages if "'unicorn'" in message]
    assert len(label_warnings) == 1, messages
