"""Transport tests use the shared Mosquitto fixture, with persistence that works when run as root.

Mosquitto started as root switches to the `mosquitto` user, which cannot
write into a root-only pytest temporary folder, so the broker silently loses
its sessions and queued messages on every restart. Outage tests depend on
that persistence, so this override keeps the broker as the current user.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.broker import MosquittoBroker, find_mosquitto


class PersistentBroker(MosquittoBroker):
    """`MosquittoBroker` that stays the invoking user, so `persistence_location` is writable."""

    def _write_config(self) -> None:
        super()._write_config()
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            with self.config_path.open("a") as config:
                config.write("user root\n")


@pytest.fixture
def mosquitto(tmp_path: Path):
    """A fresh broker on a free loopback port whose persistence survives `.stop()`/`.start()`."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = PersistentBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
