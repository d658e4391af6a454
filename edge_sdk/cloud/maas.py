"""The MaaS worker: run a heavier model on escalated frames and reply, with the broker sharing requests across workers.

Every worker subscribes to `$share/{group}/{prefix}/+/escalations`, so the
broker hands each request to one worker of the group. Requests are gathered
into micro-batches (up to `max_batch` or `max_wait_ms`), run through the
model, and each gets one reply on its response topic with the correlation
id, the result, the model name and version and the worker id. A malformed
request gets an error reply when it names a reply topic, and is logged and
counted otherwise; the worker keeps running either way.

Delivery: the worker uses a persistent session under the client id
`maas-{worker_id}` and acknowledges a request only after the broker has
acknowledged its reply. A worker killed mid-batch gets its unacknowledged
requests again when it restarts under the same worker id.

NOTE: Mosquitto keeps handing a share of new requests to a disconnected
persistent member of the group until its session expires, and drops them
then. Restart a failed worker promptly (systemd `Restart=always`) or keep
`session_expiry` short. Brokers such as EMQX can re-dispatch instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edge_sdk.cloud.batching import BatcherClosedError, MicroBatcher
from edge_sdk.cloud.errors import RequestError
from edge_sdk.cloud.inference import CloudModel
from edge_sdk.cloud.requests import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_REQUEST_BYTES,
    CheckedRequest,
    ReplyTarget,
    check_request,
    decode_jpeg,
    salvage_reply_target,
)
from edge_sdk.transport.client import Delivery, InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import EnvelopeBuilder, EscalationReply, ModelRef, escalation_properties
from edge_sdk.latency import LatencyWindow
from edge_sdk.transport.topics import MessageKind, fleet_filter, shared_filter, validate_level, worker_status_topic

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaasConfig:
    """Settings of one MaaS worker. Times are milliseconds or seconds as named; sizes are bytes or pixels."""

    worker_id: str
    prefix: str = "fleet"
    group: str = "maas"
    max_batch: int = 8
    max_wait_ms: float = 20.0
    max_queue: int = 256
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    status_interval_s: float = 10.0
    session_expiry_s: int = 600
    qos: int = 1

    def __post_init__(self) -> None:
        validate_level(self.worker_id, "worker id")
        validate_level(self.group, "shared subscription group")

    @property
    def client_id(self) -> str:
        return f"maas-{self.worker_id}"

    @property
    def request_filter(self) -> str:
        return shared_filter(self.group, fleet_filter(self.prefix, MessageKind.ESCALATIONS))


@dataclass(slots=True)
class _Job:
    """One accepted request on its way through the batcher."""

    checked: CheckedRequest
    message: InboundMessage
    received_mono: float


@dataclass(slots=True)
class _WorkerCounters:
    received: int = 0
    answered: int = 0
    error_replies: int = 0
    unanswerable: int = 0
    model_failures: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class MaasWorker:
    """Reply to the escalation requests of one shared-subscription group with the results of `model`.

    `mqtt_config` gives the broker address, protocol and TLS. The worker
    sets the client id, the persistent session, manual acknowledgement and
    its presence topic itself. `start()` returns at once, or once connected
    when given a `connect_timeout`. `stop()` unsubscribes, replies to what is
    queued, publishes an "offline" status and disconnects.
    """

    def __init__(self, model: CloudModel, mqtt_config: MqttConfig, config: MaasConfig) -> None:
        self.model = model
        self.config = config
        self.mqtt_config = mqtt_config.replace(
            client_id=config.client_id,
            clean_start=False,
            session_expiry=config.session_expiry_s,
            manual_ack=True,
            # The client publishes a retained "online" on each connection and leaves a last
            # will "offline" on the worker's status topic, so a crashed worker shows as offline.
            status_topic=worker_status_topic(config.prefix, config.worker_id),
            sender_id=config.worker_id,
        )
        self._client = MqttClient(self.mqtt_config, on_ack=self._on_broker_ack)
        self._envelopes = EnvelopeBuilder(config.worker_id)
        self._model_ref = ModelRef(model.name, model.version)
        # Gathering requests for a model that runs one image per call only adds waiting.
        self.max_batch = max(1, min(config.max_batch, model.max_batch))
        if self.max_batch < config.max_batch:
            logger.info("model %s runs one image per call: MaaS worker %s does not batch", model.name, config.worker_id)
        self._batcher: MicroBatcher[_Job] = MicroBatcher(
            self._run_batch,
            max_batch=self.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
            name=f"maas-batcher-{config.worker_id}",
        )
        self._lock = threading.Lock()
        self._awaiting_ack: dict[int, InboundMessage] = {}
        self._counters = _WorkerCounters()
        self._latency = LatencyWindow()
        self._status_stop = threading.Event()
        self._ready = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._started = False
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self, connect_timeout: float | None = None) -> None:
        """Start the batcher, the MQTT client and the status thread; with `connect_timeout`, wait for the connection."""
        if self._started:
            return
        self._started = True
        self._batcher.start()
        self._client.subscribe(self.config.request_filter, self._on_request, qos=self.config.qos)
        self._client.start()
        if connect_timeout is not None and not self._client.wait_connected(connect_timeout):
            logger.warning("MaaS worker %s is not connected to %s after %.1f s; it keeps retrying", self.config.worker_id, self.mqtt_config.address, connect_timeout)
        self._status_thread = threading.Thread(target=self._run_status, name=f"maas-status-{self.config.worker_id}", daemon=True)
        self._status_thread.start()
        logger.info(
            "MaaS worker %s serving %s %s on %s (batch up to %d or %.0f ms)",
            self.config.worker_id, self.model.name, self.model.version, self.config.request_filter, self.max_batch, self.config.max_wait_ms,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Reply to the queued requests, publish the final status and disconnect. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            self._client.stop(timeout=0.1, flush=False)
            return
        self._client.unsubscribe(self.config.request_filter)
        self._batcher.close(timeout=timeout / 2)
        self._status_stop.set()
        if self._status_thread is not None:
            self._status_thread.join(timeout=2.0)
        self._publish_status("offline")
        self._client.stop(timeout=timeout / 2)
        logger.info("MaaS worker %s stopped: %s", self.config.worker_id, self.status()["requests"])

    def __enter__(self) -> MaasWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> threading.Event:
        return self._client.connected

    # --- receiving --------------------------------------------------------------------------------

    def _on_request(self, message: InboundMessage) -> None:
        """Check one request on the network thread and queue it; a rejected request gets its error reply at once."""
        with self._lock:
            self._counters.received += 1
        try:
            checked = check_request(message.topic, message.payload, message.properties, self.config.max_request_bytes)
        except RequestError as exc:
            self._reject(message, str(exc), salvage_reply_target(message.payload, message.properties))
            return
        try:
            # NOTE: a full queue (max_queue) blocks paho's network thread here until a batch
            # finishes, which also delays keepalive pings; size max_queue for bursts.
            self._batcher.submit(_Job(checked, message, time.monotonic()))
        except BatcherClosedError:
            # Left unacknowledged: the broker sends it again when this worker id reconnects.
            logger.info("MaaS worker %s is stopping; request %s stays with the broker", self.config.worker_id, checked.target.correlation_id)

    def _reject(self, message: InboundMessage, reason: str, target: ReplyTarget | None) -> None:
        with self._lock:
            self._counters.rejected[reason.split(":", 1)[0][:60]] += 1
        if target is None:
            with self._lock:
                self._counters.unanswerable += 1
            logger.warning("MaaS worker %s dropped a request on %s that names no reply topic: %s", self.config.worker_id, message.topic, reason)
            message.ack()
            return
        logger.warning(
            "MaaS worker %s rejected request %s on %s: %s", self.config.worker_id, target.correlation_id or "(no correlation id)", message.topic, reason,
        )
        self._publish_reply(target, message, error=reason)

    # --- the batch thread -------------------------------------------------------------------------

    def _run_batch(self, jobs: list[_Job]) -> None:
        ready: list[_Job] = []
        images = []
        for job in jobs:
            try:
                images.append(decode_jpeg(job.checked.request.image_jpeg, self.config.max_image_pixels))
            except RequestError as exc:
                self._reject(job.message, str(exc), job.checked.target)
                continue
            ready.append(job)
        self._predict_and_reply(ready, images)

    def _predict_and_reply(self, jobs: list[_Job], images: list[Any]) -> None:
        try:
            results = self.model.predict_batch(images)
        except Exception as exc:  # noqa: BLE001 - every request of the batch still gets a reply
            with self._lock:
                self._counters.model_failures += 1
            logger.exception("model %s failed on a batch of %d requests", self.model.name, len(jobs))
            for job in jobs:
                self._publish_reply(job.checked.target, job.message, error=f"model {self.model.name} failed on this request: {exc}")
            return
        now = time.monotonic()
        for job, result in zip(jobs, results):
            self._latency.add_seconds(now - job.received_mono)
            self._publish_reply(job.checked.target, job.message, result=result.to_dict())

    def _publish_reply(self, target: ReplyTarget, message: InboundMessage, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        reply = EscalationReply(
            correlation_id=target.correlation_id, model=self._model_ref, worker_id=self.config.worker_id, result=result, error=error,
        )
        envelope = self._envelopes.build(MessageKind.ESCALATION_REPLIES, reply.to_body())
        properties = escalation_properties(target.correlation_id) if self.mqtt_config.is_v5 else None
        # The lock covers publish and bookkeeping, so the PUBACK hook cannot look up the spool id first.
        with self._lock:
            spool_id = self._client.publish(target.topic, envelope, qos=self.config.qos, properties=properties)
            if error is None:
                self._counters.answered += 1
            else:
                self._counters.error_replies += 1
            if spool_id is None:
                message.ack()
            else:
                self._awaiting_ack[spool_id] = message

    def _on_broker_ack(self, delivery: Delivery) -> None:
        """Acknowledge the request once the broker has stored its reply, so a crash in between redelivers the request."""
        if delivery.kind == MessageKind.WORKER_STATUS.value:
            self._ready.set()
        with self._lock:
            message = self._awaiting_ack.pop(delivery.spool_id, None)
        if message is not None:
            message.ack()

    def wait_ready(self, timeout: float) -> bool:
        """Block until the broker has taken the request subscription; return False when `timeout` seconds pass first.

        The client sends SUBSCRIBE on connecting, before any status report,
        and a broker handles one connection's packets in order, so the first
        acknowledged status report proves the subscription is in place.
        """
        return self._ready.wait(timeout)

    # --- status -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return the worker's counters as published on its status topic; every value is JSON-serializable."""
        with self._lock:
            counters = self._counters
            requests = {
                "received": counters.received,
                "answered": counters.answered,
                "error_replies": counters.error_replies,
                "unanswerable": counters.unanswerable,
                "model_failures": counters.model_failures,
                "rejected": dict(counters.rejected),
                # Received and not yet replied to: queued, in the batch being gathered or running.
                "outstanding": counters.received - counters.answered - counters.error_replies - counters.unanswerable,
            }
            awaiting = len(self._awaiting_ack)
            handled = counters.answered + counters.error_replies
        batch_sizes = dict(sorted(self._batcher.batch_sizes.items()))
        return {
            "worker_id": self.config.worker_id,
            "group": self.config.group,
            "model": self._model_ref.to_dict(),
            "max_batch": self.max_batch,
            "requests": handled,
            "request_counts": requests,
            "queue_depth": self._batcher.queue_depth,
            "awaiting_broker_ack": awaiting,
            "batch_sizes": {str(size): count for size, count in batch_sizes.items()},
            "latency_ms": self._latency.summary(),
            "mqtt": self._client.stats(),
        }

    def _publish_status(self, state: str) -> None:
        body = {"state": state, **self.status()}
        topic = worker_status_topic(self.config.prefix, self.config.worker_id)
        try:
            self._client.publish(topic, self._envelopes.build(MessageKind.WORKER_STATUS, body), qos=1, retain=True)
        except Exception as exc:  # noqa: BLE001 - status is best effort, serving goes on
            logger.warning("MaaS worker %s could not publish its status on %s: %s", self.config.worker_id, topic, exc)

    def _run_status(self) -> None:
        self._publish_status("online")
        while not self._status_stop.wait(self.config.status_interval_s):
            self._publish_status("online")
