"""`Daemon`: wires sources, models, pipeline, MQTT, escalation and vehicle links, and runs until stopped.

`run()` returns when every source has ended (files without `loop`) or
`request_stop()` was called (from a SIGTERM/SIGINT handler). On shutdown the
sources stop and each inference thread finishes the frame in hand. Queued
results are published for up to `shutdown_timeout_s`, and tracked objects get
their "end" events. Then the client flushes what the broker acknowledges in
time and publishes "offline". Everything else stays in the spool for the next start,
and one warning gives its count, the spool path and the last broker error.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from edge_sdk.daemon.config import DaemonConfig, ModelSection
from edge_sdk.daemon.errors import DaemonConfigError, DaemonError
from edge_sdk.daemon.escalation import CloudReply, EscalationPolicy, EscalationTicket, Escalator, UplinkBudget
from edge_sdk.daemon.label_coverage import warn_unknown_labels
from edge_sdk.daemon.outbox import MqttOutbox
from edge_sdk.daemon.pipeline import InferenceWorker, PipelineMetrics, Predictor, SourceSlot
from edge_sdk.daemon.publisher import ResultPublisher, VehicleHooks
from edge_sdk.daemon.status import StatusReporter
from edge_sdk.sources import Source, SourceError, make_source
from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig, TlsConfig
from edge_sdk.transport.errors import PayloadError
from edge_sdk.transport.payloads import EnvelopeBuilder, EscalationRequest, ModelRef, escalation_properties, parse_envelope, parse_escalation_reply
from edge_sdk.transport.spool import Spool
from edge_sdk.transport.topics import MessageKind, Priority, Topics

logger = logging.getLogger(__name__)

ModelLoader = Callable[[str, ModelSection, DaemonConfig], Predictor]
_WORKER_JOIN_S = 10.0
_CHECK_PERIOD_S = 0.25


def load_model(name: str, section: ModelSection, config: DaemonConfig) -> Predictor:
    """Load a model with `edge_sdk.runtime.Model.load`, resolving paths against the config's folder."""
    from edge_sdk.runtime import Model

    path = config.resolve(section.path)
    options: dict[str, Any] = {
        "backend": section.backend,
        "num_threads": section.num_threads,
        "score_threshold": section.score_threshold,
        "label_offset": section.label_offset,
        "labels": config.resolve(section.labels) if section.labels is not None else None,
    }
    if section.task is not None:
        options["task"] = section.task
    if section.mean is not None:
        options["mean"] = list(section.mean)
    if section.std is not None:
        options["std"] = list(section.std)
    logger.info("model %s: loading %s", name, path)
    return Model.load(path, **options)  # type: ignore[no-any-return]


def mqtt_config(config: DaemonConfig) -> MqttConfig:
    """Translate the `[mqtt]` section into the transport's MqttConfig."""
    section = config.mqtt
    tls = None
    if section.tls.enabled or section.tls.ca is not None:
        resolve = lambda value: None if value is None else str(config.resolve(value))  # noqa: E731
        tls = TlsConfig(ca_file=resolve(section.tls.ca), cert_file=resolve(section.tls.cert), key_file=resolve(section.tls.key))
    topics = Topics(section.topic_prefix, config.vehicle_id)
    qos = {kind.value: getattr(section.qos, kind.value) for kind in (MessageKind.RESULTS, MessageKind.EVENTS, MessageKind.STATUS, MessageKind.ESCALATIONS)}
    return MqttConfig(
        host=section.host,
        port=section.port,
        transport=section.transport,
        protocol=section.protocol,
        client_id=section.client_id or f"edge-sdk-{config.vehicle_id}",
        keepalive=section.keepalive_s,
        username=section.username,
        password=section.password or os.environ.get("EDGE_SDK_MQTT_PASSWORD"),
        tls=tls,
        qos=qos,
        clean_start=section.clean_start,
        session_expiry=section.session_expiry_s,
        status_topic=topics.status,
        sender_id=config.vehicle_id,
        reconnect_min_delay=section.reconnect_min_s,
        reconnect_max_delay=section.reconnect_max_s,
        connect_timeout=section.connect_timeout_s,
    )


def build_vehicle_links(config: DaemonConfig) -> Any:
    """Build (without opening) the `firmware_bridge` links named in `[vehicle]`; errors name the section."""
    try:
        from firmware_bridge.errors import FirmwareBridgeError
        from firmware_bridge.vehicle import VehicleLinks
    except ImportError as exc:
        raise DaemonError(f"[vehicle] is configured but firmware_bridge.vehicle cannot be imported ({exc}): install firmware_bridge or remove [vehicle]") from exc
    try:
        return VehicleLinks.from_config(dict(config.vehicle or {}))
    except FirmwareBridgeError as exc:
        raise DaemonConfigError(f"vehicle: {exc}", key="vehicle", value=config.vehicle) from exc


class Daemon:
    """The on-vehicle process. Build with a checked config, then `run()` once."""

    def __init__(self, config: DaemonConfig, *, model_loader: ModelLoader = load_model) -> None:
        self.config = config
        self.model_loader = model_loader
        self.metrics = PipelineMetrics()
        self.topics = Topics(config.mqtt.topic_prefix, config.vehicle_id)
        self.builder = EnvelopeBuilder(config.vehicle_id)
        self._stop = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(config.queue_size)
        self._worker_stop = threading.Event()
        self._sources: dict[str, Source] = {}
        self._models: dict[str, Predictor] = {}
        self._workers: list[InferenceWorker] = []
        self._spool: Spool | None = None
        self._client: MqttClient | None = None
        self._outbox: MqttOutbox | None = None
        self._escalator: Escalator | None = None
        self._publisher: ResultPublisher | None = None
        self._vehicle: Any = None
        self._status: StatusReporter | None = None
        self.started_at = time.monotonic()

    @property
    def sources(self) -> dict[str, Source]:
        """Sources by id, once `run()` has opened them."""
        return dict(self._sources)

    @property
    def client(self) -> MqttClient | None:
        return self._client

    @property
    def escalator(self) -> Escalator | None:
        return self._escalator

    @property
    def vehicle(self) -> Any:
        """The `VehicleLinks` of `[vehicle]`, or None."""
        return self._vehicle

    @property
    def publish_queue(self) -> queue.Queue[object]:
        return self._queue

    @property
    def outbox(self) -> MqttOutbox | None:
        return self._outbox

    def request_stop(self) -> None:
        """Ask `run()` to shut down; safe to call from a signal handler."""
        self._stop.set()

    def run(self) -> int:
        """Run until every source ended or a stop was requested; return the process exit code."""
        try:
            self._start()
            self._wait()
        finally:
            self._shutdown()
        failed = [s.source_id for s in self._sources.values() if s.state.value == "failed"]
        if failed:
            logger.error("daemon: sources %s failed; see the errors above", ", ".join(failed))
            return 1
        return 0

    # -- start ----------------------------------------------------------

    def _start(self) -> None:
        config = self.config
        self._open_transport()
        for name in sorted({s.model for s in config.sources}):
            self._models[name] = self._load_model(name)
        warn_unknown_labels(config, self._models)
        self._open_vehicle()
        self._open_escalation()
        self._open_sources()

        slots_by_model: dict[str, list[SourceSlot]] = {}
        for section in config.sources:
            slots_by_model.setdefault(section.model, []).append(SourceSlot(self._sources[section.id], section.fps_limit))
        for name, slots in slots_by_model.items():
            self._workers.append(InferenceWorker(name, self._models[name], slots, self._queue, self._worker_stop, self.metrics))

        assert self._outbox is not None
        policies = {name: EscalationPolicy(config.models[name].escalation) for name in self._models if config.models[name].escalation.enabled}
        hooks = VehicleHooks(
            snapshot=getattr(self._vehicle, "snapshot", None),
            send_alert=getattr(self._vehicle, "send_alert", None),
        )
        self._publisher = ResultPublisher(config, self._queue, self._outbox, self.metrics, escalator=self._escalator, policies=policies, vehicle=hooks)
        self._status = StatusReporter(self)
        self._publisher.start()
        for worker in self._workers:
            worker.start()
        logger.info("daemon: vehicle %s running %d sources on %d models", config.vehicle_id, len(self._sources), len(self._models))

    def _open_transport(self) -> None:
        spool_path = self.config.resolve(self.config.spool.path)
        section = self.config.spool
        self._spool = Spool(spool_path, max_messages=section.max_messages, max_bytes=section.max_bytes, synchronous=section.synchronous)
        self._client = MqttClient(mqtt_config(self.config), self._spool)
        self._outbox = MqttOutbox(self._client, self.topics, self.builder, self.metrics.capture_to_ack_ms)
        self._client.on_ack = self._outbox.on_ack
        self._client.start()

    def _load_model(self, name: str) -> Predictor:
        try:
            return self.model_loader(name, self.config.models[name], self.config)
        except DaemonError:
            raise
        except Exception as exc:
            raise DaemonConfigError(f"models.{name}: loading {self.config.models[name].path!r} failed: {exc}", key=f"models.{name}.path", value=self.config.models[name].path) from exc

    def _open_sources(self) -> None:
        for index, section in enumerate(self.config.sources):
            try:
                source = make_source(section.kind, section.id, **section.source_options(self.config.directory))
                self._sources[section.id] = source
                source.start()
            except SourceError as exc:
                raise DaemonConfigError(f"sources[{index}] ({section.id!r}): {exc}", key=f"sources[{index}]", value=section.id) from exc

    def _open_vehicle(self) -> None:
        if self.config.vehicle is None:
            return
        self._vehicle = build_vehicle_links(self.config)
        self._vehicle.start()

    def _open_escalation(self) -> None:
        if not any(m.escalation.enabled for m in self.config.models.values()):
            return
        assert self._client is not None
        self._escalator = Escalator(UplinkBudget(self.config.uplink), self._send_escalation, self._queue_reply)
        self._client.subscribe(self.topics.escalation_replies, self._on_reply, qos=1)
        self._escalator.start()

    # -- escalation glue ------------------------------------------------

    def _send_escalation(self, ticket: EscalationTicket, jpeg: bytes, try_spend: Callable[[int], bool]) -> int | None:
        assert self._client is not None
        model = ticket.edge_result
        request = EscalationRequest(
            frame_id=ticket.frame_id,
            source_id=ticket.source_id,
            capture_time=ticket.capture_time,
            edge_result=model.to_dict(),
            model=ModelRef(model.model_name, model.model_version),
            correlation_id=ticket.correlation_id,
            reply_to=self.topics.escalation_replies,
            image_jpeg=jpeg,
        )
        envelope = self.builder.build(MessageKind.ESCALATIONS, request.to_body())
        size = len(envelope.to_bytes())
        if not try_spend(size):
            return None
        properties = escalation_properties(ticket.correlation_id, self.topics.escalation_replies) if self._client.config.is_v5 else None
        self._client.publish(self.topics.escalations, envelope, priority=int(Priority.FRAME), properties=properties)
        return size

    def _on_reply(self, message: InboundMessage) -> None:
        if self._escalator is None:
            return
        try:
            envelope = parse_envelope(message.payload)
            reply = parse_escalation_reply(envelope.body)
        except PayloadError as exc:
            self.metrics.counters.add("invalid_replies")
            logger.warning("escalation: invalid reply on %s (mid %d) dropped: %s", message.topic, message.mid, exc)
            return
        correlation_id = reply.correlation_id
        data = getattr(message.properties, "CorrelationData", None) if message.properties is not None else None
        if data:
            correlation_id = bytes(data).decode("utf-8", errors="replace")
        self._escalator.handle_reply(correlation_id, reply.result, reply.error, reply.model.to_dict(), reply.worker_id)

    def _queue_reply(self, reply: CloudReply) -> None:
        try:
            self._queue.put(reply, timeout=1.0)
        except queue.Full:
            self.metrics.counters.add("cloud_replies_dropped")
            logger.warning("escalation: publishing queue full, cloud reply for frame %s dropped", reply.ticket.frame_id)

    # -- run and stop ---------------------------------------------------

    def _wait(self) -> None:
        assert self._status is not None
        next_status = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_status:
                self._status.publish()
                next_status = now + self.config.status_interval_s
            if not any(worker.alive for worker in self._workers):
                logger.info("daemon: every source has ended")
                return
            self._stop.wait(min(_CHECK_PERIOD_S, max(0.0, next_status - now)))
        logger.info("daemon: stop requested")

    def _warn_unsent(self) -> None:
        """Log what stays in the spool at exit, so a clean exit with an unreachable broker is not silent."""
        assert self._spool is not None
        depth = self._spool.depth
        if not depth:
            return
        last_error = self._client.stats()["last_error"] if self._client is not None else None
        logger.warning(
            "daemon: %d messages remain unsent in spool %s and will be sent on the next start; last broker error: %s",
            depth,
            self._spool.path,
            last_error or "none recorded",
        )

    def _shutdown(self) -> None:
        self._stop_capture()
        self._flush_results()
        self._close_outputs()
        logger.info("daemon: stopped")

    def _stop_capture(self) -> None:
        """Close the sources, then let the inference threads finish their current frame."""
        for source in self._sources.values():
            source.close()
        self._worker_stop.set()
        for worker in self._workers:
            if not worker.join(_WORKER_JOIN_S):
                logger.warning("daemon: inference thread %s did not stop within %.0f s", worker.model_name, _WORKER_JOIN_S)

    def _flush_results(self) -> None:
        """Publish queued results, wait for replies to escalated frames, then stop publishing."""
        if self._publisher is not None:
            # Results still queued may escalate their frames, so handle them before waiting for replies.
            self._publisher.wait_idle(self.config.shutdown_timeout_s)

        if self._escalator is not None:
            # Replies to frames already sent are still worth publishing, so wait for them within the shutdown budget.
            longest = max(m.escalation.timeout_s for m in self.config.models.values() if m.escalation.enabled)
            self._escalator.drain(min(longest, self.config.shutdown_timeout_s))

        if self._publisher is not None:
            self._publisher.stop(self.config.shutdown_timeout_s)
        if self._escalator is not None:
            self._escalator.close()

    def _close_outputs(self) -> None:
        """Publish the last status, disconnect, close the spool, the vehicle links and the models."""
        if self._status is not None and self._client is not None:
            self._status.publish()
        if self._client is not None:
            self._client.stop(max(1.0, self.config.shutdown_timeout_s))

        if self._spool is not None:
            self._warn_unsent()
            self._spool.close()
        if self._vehicle is not None:
            self._vehicle.stop()

        for name, model in self._models.items():
            close = getattr(model, "close", None)
            if close is not None:
                close()
            logger.debug("daemon: model %s closed", name)
