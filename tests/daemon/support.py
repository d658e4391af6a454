"""Test helpers: a real MQTT subscriber that records what the daemon publishes, and config writers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes


class Collector:
    """Subscribes to `{prefix}/#` with QoS 1 and a persistent session, so it also gets what was queued while it was away."""

    def __init__(self, host: str, port: int, prefix: str = "edge") -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.raw: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.on_message: Callable[[str, dict[str, Any], Any], None] | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.connected = threading.Event()

    def start(self) -> Collector:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.connect(self.host, self.port, keepalive=10, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.connected.wait(10), "collector could not connect to the test broker"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        if not flags.session_present:
            client.subscribe(f"{self.prefix}/#", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        self.raw.append((message.topic, bytes(message.payload), bool(message.retain)))
        try:
            data = json.loads(message.payload)
        except ValueError:
            return
        with self._cond:
            self.messages.append((message.topic, data))
            self._cond.notify_all()
        if self.on_message is not None:
            self.on_message(message.topic, data, message)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [data for topic, data in self.messages if topic.endswith(f"/{kind}")]

    def frames(self, source: str = "edge") -> list[dict[str, Any]]:
        return [m for m in self.of_kind("results") if m["body"].get("type") == "frame" and m["body"].get("source") == source]

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float) -> bool:
        """Wait until `predicate(self)` holds, re-checking on every message and at least every 0.5 s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(0.5, remaining))
            return True


def write_config(path: Path, data_dir: Path, port: int, *, spool: Path, source: dict[str, Any] | None = None, extra: str = "") -> Path:
    """Write a vehicle.toml for the real detector and clip on the test broker."""
    source = source or {}
    source_lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in {"pace": "lockstep", **source}.items())
    path.write_text(
        f"""
vehicle_id = "car-1"
status_interval_s = 1
shutdown_timeout_s = 10

[mqtt]
port = {port}
client_id = "edge-sdk-test-car-1"
reconnect_min_s = 0.2
reconnect_max_s = 1.0

[spool]
path = "{spool}"

[models.detector]
path = "{data_dir / 'detection' / 'detect.tflite'}"
labels = "{data_dir / 'detection' / 'COCO_labels.txt'}"
label_offset = 1
num_threads = 1

[[sources]]
id = "front"
kind = "file"
path = "{data_dir / 'video' / 'solidWhiteRight.mp4'}"
model = "detector"
{source_lines}
{extra}
"""
    )
    return path
