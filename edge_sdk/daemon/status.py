"""The periodic status record published (retained) on the vehicle's status topic."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from edge_sdk.daemon.thermal import read_cpu_temperature_c
from edge_sdk.transport.payloads import ONLINE, presence_body
from edge_sdk.transport.topics import MessageKind

if TYPE_CHECKING:
    from edge_sdk.daemon.service import Daemon

logger = logging.getLogger(__name__)


class StatusReporter:
    """Builds the health record from the daemon's parts and publishes it."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def build(self) -> dict[str, Any]:
        """Return the status body: presence "online" plus the health fields documented in docs/daemon.md."""
        daemon = self.daemon
        metrics = daemon.metrics
        counters = metrics.counters.snapshot()
        sources = {source_id: source.stats().to_dict() for source_id, source in daemon.sources.items()}
        client_stats = daemon.client.stats() if daemon.client is not None else {}
        health: dict[str, Any] = {
            "uptime_s": round(time.monotonic() - daemon.started_at, 1),
            "frames_in": sum(s["captured"] for s in sources.values()),
            "frames_inferred": counters.get("frames_inferred", 0),
            "frames_out": counters.get("results_published", 0),
            "drops": sum(s["dropped"] for s in sources.values()),
            "inference_ms": metrics.inference_ms.percentiles(50, 95),
            "capture_to_result_ms": metrics.capture_to_result_ms.percentiles(50, 95),
            "capture_to_ack_ms": metrics.capture_to_ack_ms.percentiles(50, 95, 99),
            "sources": sources,
            "queues": {"publish": daemon.publish_queue.qsize(), "publish_capacity": daemon.publish_queue.maxsize},
            "spool": {
                "depth": client_stats.get("spool_depth"),
                "bytes": client_stats.get("spool_bytes"),
                "dropped": client_stats.get("dropped"),
            },
            "mqtt": {key: client_stats.get(key) for key in ("connected", "inflight", "acked", "connects", "disconnects", "connect_failures", "last_error")},
            "counters": counters,
            "cpu_temperature_c": read_cpu_temperature_c(),
        }
        if daemon.escalator is not None:
            health["escalation"] = daemon.escalator.stats()
            health["queues"]["escalation_pending"] = health["escalation"]["pending"]
        if daemon.vehicle is not None:
            try:
                health["vehicle_links"] = daemon.vehicle.status()
            except Exception as exc:  # noqa: BLE001 - status goes out without link details rather than not at all
                logger.warning("status: vehicle link status failed: %s", exc)
        return presence_body(ONLINE, **health)

    def publish(self) -> None:
        outbox = self.daemon.outbox
        if outbox is None:
            return
        try:
            outbox.send(MessageKind.STATUS, self.build(), retain=True)
        except Exception:  # noqa: BLE001 - a failed status must not stop the daemon
            logger.exception("status: publishing the status record failed")
