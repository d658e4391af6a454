"""The demo's daemon configuration and the commands that run each part on its own.

`daemon_config_data()` is what the in-process daemon runs with.
`write_vehicle_yaml()` writes the same settings as `vehicle.yaml` for a broker
on 127.0.0.1:1883 and the simulator's stable device links, so the commands
from `part_commands()` reproduce the demo part by part.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.demo.report import PartCommand
from edge_sdk.demo.vehicle_logs import CAN_SIGNALS, VehicleLogs

MODEL_NAME = "signs"
SOURCE_ID = "front"
SEPARATE_BROKER_URL = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True, slots=True)
class PartFiles:
    """Every file a demo run reads or writes, all absolute."""

    out_dir: Path
    source: Path
    edge_model: Path
    cloud_model: Path
    database: Path
    spool: Path
    logs: VehicleLogs
    loop_source: bool
    labels: Path | None = None
    label_offset: int = 0

    @property
    def link_dir(self) -> Path:
        return self.out_dir / "vehicle" / "links"


def _vehicle_section(files: PartFiles, paths: dict[str, str]) -> dict[str, Any] | None:
    if not paths:
        return None
    section: dict[str, Any] = {}
    if "gps" in paths:
        section["gps"] = {"url": paths["gps"]}
    if "can" in paths:
        section["can"] = {"url": paths["can"], "dbc": str(files.logs.dbc), "signals": dict(CAN_SIGNALS), "speed_signal": "speed"}
    if "mcu" in paths:
        section["mcu"] = {"url": paths["mcu"]}
    return section


def daemon_config_data(
    files: PartFiles, vehicle_id: str, prefix: str, escalate_below: float, mqtt: Any, vehicle_paths: dict[str, str]
) -> dict[str, Any]:
    """Return the daemon config (as parsed TOML/YAML data) for the broker in `mqtt` (an MqttConfig)."""
    data: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "status_interval_s": 1.0,
        "models": {
            MODEL_NAME: {
                "path": str(files.edge_model),
                "escalation": {"enabled": True, "below_score": escalate_below, "max_side": 320, "timeout_s": 5.0},
            }
        },
        "sources": [
            {"id": SOURCE_ID, "kind": "file", "model": MODEL_NAME, "path": str(files.source), "loop": files.loop_source, "pace": "realtime"}
        ],
        "mqtt": {
            "host": mqtt.host,
            "port": mqtt.port,
            "protocol": mqtt.protocol,
            "client_id": f"edge-sdk-{vehicle_id}",
            "topic_prefix": prefix,
        },
        "spool": {"path": str(files.spool)},
        "publish": {"summary_interval_s": 10.0},
    }
    if files.labels is not None:
        data["models"][MODEL_NAME]["labels"] = str(files.labels)
        data["models"][MODEL_NAME]["label_offset"] = files.label_offset
    if mqtt.username is not None:
        data["mqtt"]["username"] = mqtt.username
    if mqtt.password is not None:
        data["mqtt"]["password"] = mqtt.password
    vehicle = _vehicle_section(files, vehicle_paths)
    if vehicle is not None:
        data["vehicle"] = vehicle
    return data


def write_vehicle_yaml(files: PartFiles, vehicle_id: str, prefix: str, escalate_below: float) -> Path:
    """Write `vehicle.yaml` for running the daemon on its own against a broker on 127.0.0.1:1883."""
    import yaml

    from edge_sdk.transport.config import MqttConfig

    paths = {name: str(files.link_dir / name) for name in ("gps", "can", "mcu")}
    data = daemon_config_data(files, vehicle_id, prefix, escalate_below, MqttConfig.from_url(SEPARATE_BROKER_URL), paths)
    path = files.out_dir / "vehicle.yaml"
    header = "# Written by `edge-sdk demo`: the demo's daemon settings for a broker on 127.0.0.1:1883.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def part_commands(files: PartFiles, prefix: str) -> tuple[PartCommand, ...]:
    """Return the shell commands that run the demo's parts one by one (each in its own terminal)."""
    q = shlex.quote
    broker = f"--broker {SEPARATE_BROKER_URL} --prefix {q(prefix)}"
    logs = files.logs
    return (
        PartCommand("0. Write the clip, the vehicle logs and vehicle.yaml without running anything", f"edge-sdk demo --prepare-only --out {q(str(files.out_dir))}"),
        PartCommand("1. An MQTT broker on 127.0.0.1:1883 (Mosquitto; any MQTT 5 or 3.1.1 broker works)", "mosquitto -p 1883"),
        PartCommand("2. The telemetry ingest subscriber writing SQLite", f"edge-sdk telemetry ingest --db {q(str(files.database))} {broker}"),
        PartCommand("3. A MaaS worker answering escalated frames", f"edge-sdk maas serve --model {q(str(files.cloud_model))} --worker-id demo-worker {broker}"),
        PartCommand(
            "4. The vehicle simulator (firmware_bridge, installed with edge-sdk)",
            f"python -m firmware_bridge.simulator --nmea {q(str(logs.nmea))} --can-log {q(str(logs.candump))} --mcu --nmea-interval 0.5 --link-dir {q(str(files.link_dir))}",
        ),
        PartCommand("5. The daemon on the clip", f"edge-sdk run --config {q(str(files.out_dir / 'vehicle.yaml'))}"),
        PartCommand("6. What was stored", f"edge-sdk telemetry summary --db {q(str(files.database))}"),
    )
