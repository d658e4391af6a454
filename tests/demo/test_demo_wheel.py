"""`edge-sdk demo` from the built wheel in a fresh virtual environment, as a new user installs it.

Slow (about 2-3 minutes): builds the wheel, installs it with the demo extra
from the package registry into a new venv, then runs the installed
`edge-sdk demo` outside the source tree with no EDGE_SDK_DATA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_demo_from_wheel_in_fresh_venv(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("EDGE_SDK_DATA", "PYTHONPATH", "VIRTUAL_ENV")}
    wheel_dir = tmp_path / "wheel"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(REPO_ROOT)], tmp_path, env, 600)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(wheel_dir.glob("edge_sdk-*.whl"))
    assert len(wheels) == 1

    venv_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", f"{wheels[0]}[demo]"], tmp_path, env, 900)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "user"
    work.mkdir()
    demo = _run([str(venv_dir / "bin" / "edge-sdk"), "demo", "--duration", "15", "--no-live", "--out", "out"], work, env, 300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    report = json.loads((work / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert report["errors"] == []
    assert report["frames_processed"] > 0
    assert report["frames_stored"] > 0
    assert report["escalations_answered"] >= 1
    assert str(venv_dir) in report["edge_model"]
    assert report["extra"]["vehicle_simulator"] == "running"
