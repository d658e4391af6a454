"""Driver alerts to the MCU, sent from a thread of their own because each waits for the MCU's ACK."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from edge_sdk.daemon.stats import Counters

logger = logging.getLogger(__name__)

_QUEUE_SIZE = 16

AlertFunction = Callable[[str, str, int], None]


class AlertDispatcher:
    """Queues alerts and sends them one by one; a full queue drops the alert and counts it."""

    def __init__(self, send_alert: AlertFunction, counters: Counters) -> None:
        self._send_alert = send_alert
        self._counters = counters
        self._queue: queue.Queue[tuple[str, str, int, str] | None] = queue.Queue(_QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def submit(self, kind: str, severity: str, text_id: int, reason: str) -> None:
        """Queue one alert; `reason` names the object for the log."""
        try:
            self._queue.put_nowait((kind, severity, text_id, reason))
        except queue.Full:
            self._counters.add("alerts_dropped")
            logger.warning("alerts: queue full, alert %s for %s dropped", kind, reason)

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            logger.warning("alerts: queue still full at shutdown")
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("alerts: sender thread did not stop within %.1f s", timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, severity, text_id, reason = item
            try:
                self._send_alert(kind, severity, text_id)
                self._counters.add("alerts_sent")
                logger.info("alerts: sent %s (%s, text %d) for %s", kind, severity, text_id, reason)
            except Exception as exc:  # noqa: BLE001 - a failed alert must not stop the next one
                self._counters.add("alert_errors")
                logger.error("alerts: sending %s for %s failed: %s", kind, reason, exc)
