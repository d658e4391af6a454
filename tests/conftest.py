"""Shared fixtures: the real-data folder and a real Mosquitto broker.

Real third-party data (models, images, video, logs) is read from the folder
named by EDGE_SDK_DATA, default `../shared/data` beside the repository. With
CI=true a missing folder fails the run; elsewhere tests that need it skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.broker import MosquittoBroker, find_mosquitto

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EDGE_SDK_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not (DATA_DIR / "PROVENANCE.md").is_file():
        pytest.exit(f"real test data not found at {DATA_DIR}: set EDGE_SDK_DATA or place shared/data beside the repository", returncode=3)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder; tests using it skip when it is missing outside CI."""
    if not (DATA_DIR / "PROVENANCE.md").is_file():
        pytest.skip(f"real test data not found at {DATA_DIR} (set EDGE_SDK_DATA to the shared data folder)")
    return DATA_DIR


@pytest.fixture
def mosquitto(tmp_path: Path):
    """A fresh Mosquitto broker on a free loopback port, stopped after the test."""
    if find_mosquitto() is None:
        if IN_CI:
            pytest.fail("mosquitto is not installed: .ci/run must install it (apt-get install -y mosquitto)")
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
