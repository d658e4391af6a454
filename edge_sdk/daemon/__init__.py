"""The on-vehicle daemon: configuration schema, pipeline, escalation policy, events and status.

`load_config(path)` reads and checks a vehicle.toml or vehicle.yaml;
`Daemon(config).run()` runs it until every source ended or `request_stop()`.
`Daemon` is imported on first use because it pulls in the MQTT client.
"""

from __future__ import annotations

from typing import Any

from edge_sdk.daemon.config import DaemonConfig, load_config, parse_config
from edge_sdk.daemon.errors import DaemonConfigError, DaemonError

__all__ = ["Daemon", "DaemonConfig", "DaemonConfigError", "DaemonError", "load_config", "parse_config"]


def __getattr__(name: str) -> Any:
    if name == "Daemon":
        from edge_sdk.daemon.service import Daemon

        return Daemon
    raise AttributeError(f"module 'edge_sdk.daemon' has no attribute {name!r}")
