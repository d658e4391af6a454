"""`edge-sdk run --check` and `check_files`: every file a config names is checked, with the key, the value and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.daemon.check import check_files
from edge_sdk.daemon.config import load_config
from tests.broker import free_port
from tests.conftest import REPO_ROOT
from tests.daemon.support import write_config


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_sdk", "run", "--config", str(config), "--check"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )


def write_real_config(tmp_path: Path, data_dir: Path, extra: str = "") -> Path:
    return write_config(tmp_path / "vehicle.toml", data_dir, free_port(), spool=tmp_path / "spool" / "spool.sqlite", extra=extra)


def replace_in(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_check_accepts_real_files(tmp_path: Path, data_dir: Path) -> None:
    config = write_real_config(tmp_path, data_dir)
    assert check_files(load_config(config)) == []

    completed = run_check(config)
    assert completed.returncode == 0, completed.stderr
    assert "valid (1 sources, 1 models, vehicle car-1)" in completed.stdout
    assert not (tmp_path / "spool").exists(), "--check must not create the spool"


def test_check_missing_video_names_key(tmp_path: Path, data_dir: Path) -> None:
    config = replace_in(write_real_config(tmp_path, data_dir), str(data_dir / "video" / "solidWhiteRight.mp4"), str(tmp_path / "absent.mp4"))
    completed = run_check(config)
    assert completed.returncode == 1
    assert "sources[0].path = " in completed.stderr
    assert str(tmp_path / "absent.mp4") in completed.stderr
    assert "video file" in completed.stderr
    assert "not found" in completed.stderr
    assert "valid" not in completed.stdout


def test_check_missing_model_names_key(tmp_path: Path, data_dir: Path) -> None:
    config = replace_in(write_real_config(tmp_path, data_dir), str(data_dir / "detection" / "detect.tflite"), str(tmp_path / "absent.tflite"))
    completed = run_check(config)
    assert completed.returncode == 1
    assert "models.detector.path = " in completed.stderr
    assert "not found" in completed.stderr
    assert "deploy the model" in completed.stderr


def test_check_text_model_is_not_tflite(tmp_path: Path, data_dir: Path) -> None:
    text_model = tmp_path / "detect.tflite"
    text_model.write_text("this is a text file, not a model\n")
    config = replace_in(write_real_config(tmp_path, data_dir), str(data_dir / "detection" / "detect.tflite"), str(text_model))
    completed = run_check(config)
    assert completed.returncode == 1
    assert "models.detector.path = " in completed.stderr
    assert "is not a TFLite model" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_check_reports_every_problem(tmp_path: Path, data_dir: Path) -> None:
    config = write_real_config(tmp_path, data_dir, extra='[mqtt.tls]\nca = "certs/ca.pem"\n\n[vehicle.can]\nurl = "loop://"\ndbc = "/nonexistent/bus.dbc"\n')
    replace_in(config, str(data_dir / "detection" / "COCO_labels.txt"), "labels-missing.txt")
    errors = check_files(load_config(config))
    keys = [error.key for error in errors]
    assert keys == ["models.detector.labels", "mqtt.tls.ca", "vehicle.can.dbc"]
    assert str(tmp_path / "labels-missing.txt") in str(errors[0])
    assert str(tmp_path / "certs" / "ca.pem") in str(errors[1])
    assert "/nonexistent/bus.dbc" in str(errors[2])

    completed = run_check(config)
    assert completed.returncode == 1
    assert "3 problems found" in completed.stderr


def test_check_spool_folder_must_be_writable(tmp_path: Path, data_dir: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write to any folder, so the permission check cannot fail")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        config = replace_in(write_real_config(tmp_path, data_dir), str(tmp_path / "spool" / "spool.sqlite"), str(locked / "new" / "spool.sqlite"))
        errors = check_files(load_config(config))
    finally:
        locked.chmod(0o700)
    assert [error.key for error in errors] == ["spool.path"]
    assert f"folder {locked} is not writable" in str(errors[0])


def test_check_spool_path_is_directory(tmp_path: Path, data_dir: Path) -> None:
    config = replace_in(write_real_config(tmp_path, data_dir), str(tmp_path / "spool" / "spool.sqlite"), str(tmp_path))
    errors = check_files(load_config(config))
    assert [error.key for error in errors] == ["spool.path"]
    assert "is a directory" in str(errors[0])


def test_check_connects_to_no_broker(tmp_path: Path, data_dir: Path) -> None:
    config = replace_in(write_real_config(tmp_path, data_dir), "[mqtt]\n", '[mqtt]\nhost = "broker.invalid"\n')
    completed = run_check(config)
    assert completed.returncode == 0, completed.stderr
    assert "broker" not in completed.stderr


def test_check_spool_below_a_file(tmp_path: Path, data_dir: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool folder should be\n")
    config = replace_in(write_real_config(tmp_path, data_dir), str(tmp_path / "spool" / "spool.sqlite"), str(blocker / "spool.sqlite"))
    errors = check_files(load_config(config))
    assert [error.key for error in errors] == ["spool.path"]
    assert f"{blocker} is a file" in str(errors[0])
