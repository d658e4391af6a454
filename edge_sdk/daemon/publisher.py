"""The publishing stage: results, events, summaries and cloud replies become messages.

Message bodies (the `body` of the transport's JSON envelope) are built here
and documented in docs/daemon.md:

- results topic, `"type": "frame"`: one per processed frame, `"source": "edge"`;
  a second one with `"source": "cloud"` carries both results when the cloud
  replies an escalated frame;
- results topic, `"type": "summary"`: one per source and period;
- events topic: one per object event (new, update, end).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edge_sdk.daemon.alerts import AlertDispatcher
from edge_sdk.daemon.config import AlertSection, DaemonConfig
from edge_sdk.daemon.escalation import CloudReply, EscalationPolicy, Escalator
from edge_sdk.daemon.pipeline import PipelineMetrics, Processed, SourceFinished
from edge_sdk.daemon.summary import PeriodSummary
from edge_sdk.daemon.tracker import EventKind, IouTracker, ObjectEvent, TrackerSettings
from edge_sdk.transport.topics import MessageKind

logger = logging.getLogger(__name__)

_POLL_S = 0.2


class Outbox(Protocol):
    """Sends one message body of a kind; `capture_mono` lets the acknowledgement be timed from capture."""

    def send(self, kind: MessageKind, body: Mapping[str, Any], *, capture_mono: float | None = None, retain: bool = False) -> int | None: ...


@dataclass(frozen=True, slots=True)
class VehicleHooks:
    """Optional links to the vehicle: latest state for payloads, alerts to the MCU."""

    snapshot: Callable[[], dict[str, Any]] | None = None
    send_alert: Callable[[str, str, int], None] | None = None


class ResultPublisher:
    """Consumes the pipeline's queue in one thread and publishes the messages the config selects."""

    def __init__(
        self,
        config: DaemonConfig,
        items: queue.Queue[object],
        outbox: Outbox,
        metrics: PipelineMetrics,
        *,
        escalator: Escalator | None = None,
        policies: Mapping[str, EscalationPolicy] | None = None,
        vehicle: VehicleHooks | None = None,
    ) -> None:
        self.config = config
        self.items = items
        self.outbox = outbox
        self.metrics = metrics
        self.escalator = escalator
        self.policies = dict(policies or {})
        self.vehicle = vehicle or VehicleHooks()
        self._processed_per_source: dict[str, int] = {}
        settings = TrackerSettings(**{name: getattr(config.events, name) for name in TrackerSettings.__slots__})  # type: ignore[attr-defined]
        self._trackers = {s.id: IouTracker(s.id, settings) for s in config.sources}
        now = time.time()
        self._summaries = {s.id: PeriodSummary(s.id, config.events.min_score, now) for s in config.sources}
        self._next_summary = time.monotonic() + config.publish.summary_interval_s
        self._alert_last: dict[str, float] = {}
        self._finished: set[str] = set()
        self._alerts = AlertDispatcher(self.vehicle.send_alert, metrics.counters) if self.vehicle.send_alert and config.alerts else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every queued item has been handled, not only taken off the queue."""
        deadline = time.monotonic() + timeout
        while self.items.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.items.unfinished_tasks

    def stop(self, timeout: float) -> bool:
        """Publish what is queued within `timeout` seconds, then end objects and summaries; False if time ran out."""
        deadline = time.monotonic() + timeout
        self.wait_idle(timeout)
        self._stop.set()
        self._thread.join(max(0.1, deadline - time.monotonic()) + 1.0)
        drained = not self._thread.is_alive() and self.items.qsize() == 0
        if not drained:
            logger.warning("publisher: %d results still queued at shutdown were not published", self.items.qsize())
        self._finish_all()
        if self._alerts is not None:
            self._alerts.close()
        return drained

    # -- thread ---------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.items.get(timeout=_POLL_S)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                self._maybe_summarize()
            except Exception:  # noqa: BLE001 - the publishing loop must outlive one bad message
                self.metrics.counters.add("publish_errors")
                logger.exception("publisher: failed to publish %r", type(item).__name__)
            finally:
                if item is not None:
                    self.items.task_done()

    def _handle(self, item: object) -> None:
        if isinstance(item, Processed):
            self._on_processed(item)
        elif isinstance(item, CloudReply):
            self._on_cloud_reply(item)
        elif isinstance(item, SourceFinished):
            self._finished.add(item.source_id)
            self._send_events(self._trackers[item.source_id].finish())
            self._send_summary(item.source_id)

    def _on_processed(self, item: Processed) -> None:
        frame, result = item.frame, item.result
        self.metrics.capture_to_result_ms.add_seconds(item.t_infer_end - frame.t_mono)
        count = self._processed_per_source.get(frame.source_id, 0)
        self._processed_per_source[frame.source_id] = count + 1

        self._summaries[frame.source_id].add(result)
        if self.config.publish.events:
            self._send_events(self._trackers[frame.source_id].update(result, frame.seq, frame.t_wall))

        body = self._frame_body(item)
        ticket = None
        policy = self.policies.get(item.model_name)
        if self.escalator is not None and policy is not None:
            ticket = self.escalator.offer(
                policy, result, frame_id=frame.frame_id, source_id=frame.source_id, frame_seq=frame.seq, capture_time=frame.t_wall, image=frame.image
            )
        if ticket is not None:
            body["escalation"] = {"correlation_id": ticket.correlation_id, "reason": ticket.reason}

        if self._wants_result(result, count) or ticket is not None:
            self.outbox.send(MessageKind.RESULTS, body, capture_mono=frame.t_mono)
            self.metrics.counters.add("results_published")
        else:
            self.metrics.counters.add("results_skipped")

    def _wants_result(self, result: Any, count: int) -> bool:
        mode = self.config.publish.results
        if mode == "none" or count % self.config.publish.results_every_n:
            return False
        if mode == "detections":
            threshold = self.config.events.min_score
            return any(d.score >= threshold for d in result.detections) or any(c.score >= threshold for c in result.classifications[:1])
        return True

    def _frame_body(self, item: Processed) -> dict[str, Any]:
        frame = item.frame
        body: dict[str, Any] = {
            "type": "frame",
            "source": "edge",
            "source_id": frame.source_id,
            "frame_id": frame.frame_id,
            "frame_seq": frame.seq,
            "capture_time": frame.t_wall,
            "model_name": item.model_name,
            "result": item.result.to_dict(),
            "latency_ms": {
                "capture_to_inference": round((item.t_infer_start - frame.t_mono) * 1000.0, 3),
                "inference": round((item.t_infer_end - item.t_infer_start) * 1000.0, 3),
            },
        }
        state = self._vehicle_state()
        if state is not None:
            body["vehicle"] = state
        return body

    def _on_cloud_reply(self, reply: CloudReply) -> None:
        ticket = reply.ticket
        body: dict[str, Any] = {
            "type": "frame",
            "source": "cloud",
            "source_id": ticket.source_id,
            "frame_id": ticket.frame_id,
            "frame_seq": ticket.frame_seq,
            "capture_time": ticket.capture_time,
            "correlation_id": ticket.correlation_id,
            "reason": ticket.reason,
            "edge": ticket.edge_result.to_dict(),
            "cloud": reply.result,
            "cloud_model": reply.model,
            "worker_id": reply.worker_id,
            "rtt_ms": round(reply.rtt_ms, 3),
        }
        if reply.error is not None:
            body["error"] = reply.error
        self.outbox.send(MessageKind.RESULTS, body)
        self.metrics.counters.add("cloud_results_published")

    # -- events, alerts, summaries --------------------------------------

    def _send_events(self, events: Sequence[ObjectEvent]) -> None:
        if not events:
            return
        state = self._vehicle_state()
        for event in events:
            body = {"type": "object", **event.to_dict()}
            if state is not None:
                body["vehicle"] = state
            self.outbox.send(MessageKind.EVENTS, body)
            self.metrics.counters.add(f"events_{event.kind.value}")
            if event.kind is EventKind.NEW:
                self._maybe_alert(event)

    def _maybe_alert(self, event: ObjectEvent) -> None:
        if self._alerts is None:
            return
        for rule in self.config.alerts:
            if self._alert_matches(rule, event):
                self._alert_last[rule.label] = time.monotonic()
                self._alerts.submit(rule.kind, rule.severity, rule.text_id, f"object {event.object_id} ({event.label}) of source {event.source_id}")

    def _alert_matches(self, rule: AlertSection, event: ObjectEvent) -> bool:
        if rule.label != event.label or event.max_score < rule.min_score:
            return False
        last = self._alert_last.get(rule.label)
        return last is None or time.monotonic() - last >= rule.cooldown_s

    def _maybe_summarize(self) -> None:
        interval = self.config.publish.summary_interval_s
        if not interval or time.monotonic() < self._next_summary:
            return
        self._next_summary = time.monotonic() + interval
        for source_id in self._summaries:
            if source_id not in self._finished:
                self._send_summary(source_id)

    def _send_summary(self, source_id: str) -> None:
        if not self.config.publish.summary_interval_s:
            return
        self.outbox.send(MessageKind.RESULTS, self._summaries[source_id].take(time.time()))
        self.metrics.counters.add("summaries_published")

    def _finish_all(self) -> None:
        for source_id, tracker in self._trackers.items():
            if source_id in self._finished:
                continue
            try:
                self._send_events(tracker.finish())
                self._send_summary(source_id)
            except Exception:  # noqa: BLE001 - shutdown goes on with the other sources
                logger.exception("publisher: final events of source %s failed", source_id)

    def _vehicle_state(self) -> dict[str, Any] | None:
        if not self.config.publish.include_vehicle_state or self.vehicle.snapshot is None:
            return None
        try:
            return self.vehicle.snapshot()
        except Exception as exc:  # noqa: BLE001 - results go out without vehicle state rather than not at all
            self.metrics.counters.add("vehicle_state_errors")
            logger.debug("publisher: vehicle snapshot failed: %s", exc)
            return None
