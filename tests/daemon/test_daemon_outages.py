"""Store-and-forward through the daemon: a broker outage and a killed process lose no message."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_sdk.daemon.config import load_config
from edge_sdk.daemon.service import Daemon
from tests.conftest import REPO_ROOT
from tests.daemon.support import Collector, write_config

OUTAGE_S = 30.0
# Lockstep with a frame-rate limit: every frame of the looping clip is processed, so frame_seq has no gaps.
STEADY_SOURCE = {"pace": "lockstep", "loop": True, "fps_limit": 5}


@pytest.fixture
def collector(mosquitto):
    collector = Collector(mosquitto.host, mosquitto.port).start()
    yield collector
    collector.stop()


def assert_no_loss(frames: list[dict], published: int) -> None:
    """Every frame_seq 0..published-1 arrived; a repeated frame_seq always carries the same message id."""
    by_seq: dict[int, set[str]] = {}
    for message in frames:
        by_seq.setdefault(message["body"]["frame_seq"], set()).add(message["message_id"])
    missing = sorted(set(range(published)) - set(by_seq))
    assert not missing, f"{len(missing)} results lost, first frame_seq {missing[:10]}"
    conflicting = {seq: ids for seq, ids in by_seq.items() if len(ids) > 1}
    assert not conflicting, f"frames delivered twice with different message ids: {conflicting}"


def test_broker_outage_loses_nothing(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", source=STEADY_SOURCE)
    daemon = Daemon(load_config(config))
    exit_codes: list[int] = []
    thread = threading.Thread(target=lambda: exit_codes.append(daemon.run()))
    thread.start()
    try:
        assert collector.wait_for(lambda c: len(c.frames()) >= 10, 60)

        mosquitto.stop()
        published_at_stop = daemon.metrics.counters.get("results_published")
        threading.Event().wait(OUTAGE_S)
        published_during_outage = daemon.metrics.counters.get("results_published") - published_at_stop
        mosquitto.start()

        target = daemon.metrics.counters.get("results_published")
        assert collector.wait_for(lambda c: {m["body"]["frame_seq"] for m in c.frames()} >= set(range(target)), 60), "backlog not delivered after the broker came back"
    finally:
        daemon.request_stop()
        thread.join(60)
    assert exit_codes == [0]
    published = daemon.metrics.counters.get("results_published")
    assert collector.wait_for(lambda c: len({m["body"]["frame_seq"] for m in c.frames()}) >= published, 30)

    assert published_during_outage > 0, "nothing was produced while the broker was down"
    assert_no_loss(collector.frames(), published)


def spooled_message_ids(spool_path: Path) -> list[str]:
    with sqlite3.connect(f"file:{spool_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT payload FROM messages ORDER BY id").fetchall()
    return [json.loads(payload)["message_id"] for (payload,) in rows]


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "edge_sdk", "-v", "run", "--config", str(config)], stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def test_killed_daemon_delivers_spool_after_restart(tmp_path: Path, data_dir: Path, mosquitto, collector: Collector) -> None:
    spool = tmp_path / "spool.sqlite"
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=spool, source=STEADY_SOURCE)
    log = tmp_path / "daemon.log"
    process = start_daemon(config, log)
    try:
        assert collector.wait_for(lambda c: len(c.frames()) >= 5, 60), log.read_text()[-3000:]
        mosquitto.stop()
        assert wait_until(lambda: len(spooled_message_ids(spool)) >= 20, 60), "the daemon did not spool while the broker was down"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    spooled = spooled_message_ids(spool)

    mosquitto.start()
    restarted = start_daemon(config, log)
    try:
        delivered = collector.wait_for(lambda c: set(spooled) <= {m["message_id"] for _, m in c.messages}, 60)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait(10)
    received = {m["message_id"] for _, m in collector.messages}
    missing = [mid for mid in spooled if mid not in received]
    assert delivered and not missing, f"{len(missing)} of {len(spooled)} spooled messages never arrived: {missing[:5]}"
    offline = [m for m in collector.of_kind("status") if m["body"].get("state") == "offline"]
    assert offline, "a SIGTERM shutdown publishes the retained 'offline' status"
