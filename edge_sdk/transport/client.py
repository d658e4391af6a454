"""`MqttClient`: paho-mqtt 2.x (callback API version 2) with store-and-forward.

Publishing: every QoS >= 1 `publish` is written to the `Spool` first and
returns its spool id. A sender thread hands spooled messages to paho in
priority order (events, status, results, then escalation frames), keeping at
most `inflight_window` unacknowledged, and deletes each one when the broker's
PUBACK/PUBCOMP arrives (`on_publish` with its mid). Paho resends a message
lost with the connection after the reconnect. After a process restart the
spool resends it. Delivery is therefore at least once, and subscribers drop
duplicates by the envelope's `message_id`. QoS 0 messages bypass the spool
and are dropped (and counted) while disconnected.

Connection: the network thread connects and reconnects with exponential
backoff between `reconnect_min_delay` and `reconnect_max_delay`; each
failure is logged and counted in `stats()` (`connect_failures`,
`last_error`). With `status_topic` set, each connection publishes a retained
"online" envelope (kind `worker_status` on a worker status topic, else
`status`), the broker publishes the retained last will "offline" if
the link dies, and `stop()` publishes "offline" itself before disconnecting.

Subscriptions: `subscribe(filter, handler)` is kept and sent again after
every reconnect where the broker reports no session present (always on the
first connection of the process). Handlers run on the network thread; an
exception in a handler or a hook is logged and counted, never raised into
paho.

Threads: `start()` starts the network and sender threads; `stop(timeout)`
flushes, publishes "offline", disconnects and joins both with bounded waits.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_sdk.latency import LatencyWindow
from edge_sdk.transport.config import MqttConfig, TlsConfig
from edge_sdk.transport.errors import MqttConfigError, PayloadError, TopicError, TransportError
from edge_sdk.transport.messages import Delivery, InboundMessage, MessageHandler
from edge_sdk.transport.paho_setup import build_paho_client, connect_properties
from edge_sdk.transport.payloads import OFFLINE, ONLINE, Envelope, EnvelopeBuilder, presence_body
from edge_sdk.transport.properties import properties_from_dict, properties_to_dict
from edge_sdk.transport.spool import Spool, SpooledMessage
from edge_sdk.transport.stats import RateLimitedLog
from edge_sdk.transport.topics import MessageKind, default_priority, kind_of_topic, strip_shared

logger = logging.getLogger(__name__)

RESEND_HOLD_S = 10.0
# A spooled message in flight each time the broker closed a young connection (younger than
# POISON_WINDOW_S, nothing acknowledged on it) this many times in a row is taken for the cause.
POISON_STRIKES = 3
POISON_WINDOW_S = 10.0
# MQTT 5 DISCONNECT reasons that name a broker-side cause for closing the connection, not a
# message: server busy, shutting down, keep alive timeout, session taken over, use another server,
# server moved. Such a disconnect never counts against the message in flight.
NOT_A_MESSAGE_FAULT = frozenset({0x89, 0x8B, 0x8D, 0x8E, 0x9C, 0x9D})

__all__ = ["Delivery", "InboundMessage", "MessageHandler", "MqttClient", "MqttConfig", "TlsConfig"]


@dataclass(slots=True)
class _InFlight:
    message: SpooledMessage
    sent_mono: float


@dataclass(slots=True)
class _Counters:
    published: int = 0
    acked: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    qos0_sent: int = 0
    qos0_dropped: int = 0
    connects: int = 0
    disconnects: int = 0
    connect_failures: int = 0
    subscribe_failures: int = 0
    handler_errors: int = 0
    hook_errors: int = 0
    last_error: str | None = None


class MqttClient:
    """MQTT client with a durable spool; see the module docstring for the delivery contract.

    `spool` None gives an in-memory spool (messages survive outages but not a
    process restart). A spool passed in is not closed by `stop()`.
    `on_ack(Delivery)` is called on the sender thread for each acknowledged
    message; `on_connection_change(connected: bool, reason: str)` on the
    network thread.
    """

    def __init__(
        self,
        config: MqttConfig,
        spool: Spool | None = None,
        *,
        on_ack: Callable[[Delivery], None] | None = None,
        on_connection_change: Callable[[bool, str], None] | None = None,
    ) -> None:
        self.config = config
        self._owns_spool = spool is None
        self.spool = spool if spool is not None else Spool.in_memory()
        self.on_ack = on_ack
        self.on_connection_change = on_connection_change
        self.connected = threading.Event()
        self.ready = threading.Event()

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._acks: collections.deque[tuple[int, ReasonCode | None, float]] = collections.deque()
        self._inflight: dict[int, _InFlight] = {}
        self._subscriptions: dict[str, tuple[MessageHandler, int]] = {}
        self._pending_subscribes: dict[int, list[str]] = {}
        self._early_subacks: set[int] = set()
        self._counters = _Counters()
        self._latency = LatencyWindow()
        self._rtt = LatencyWindow()
        self._failure_log = RateLimitedLog(logger, every=10)
        self._presence = EnvelopeBuilder(config.sender_id) if config.status_topic else None
        # A worker's presence goes to its worker_status topic, so its envelopes carry that kind.
        self._presence_kind = kind_of_topic(config.status_topic or "") or MessageKind.STATUS
        self._first_connect_done = False
        self._hold_until = 0.0
        self._window = config.inflight_window
        self._connected_mono = 0.0
        self._acks_this_connection = 0
        self._strikes = 0
        self._strike_id: int | None = None
        self._poison: SpooledMessage | None = None
        self._paho_generation = 0  # counts the times paho's outgoing queue was emptied
        self._max_packet: int | None = None
        self._started = False
        self._stopping = False
        self._closed = False
        self._network_thread: threading.Thread | None = None
        self._sender_thread: threading.Thread | None = None
        self._paho = self._make_paho()

    # --- setup ----------------------------------------------------------------------------------

    def _make_paho(self) -> mqtt.Client:
        client = build_paho_client(self.config)
        self._set_will(client)
        client.on_connect = self._guard(self._handle_connect)
        client.on_connect_fail = self._guard(self._handle_connect_fail)
        client.on_disconnect = self._guard(self._handle_disconnect)
        client.on_publish = self._handle_publish
        client.on_subscribe = self._guard(self._handle_subscribe)
        client.on_message = self._guard(self._handle_message)
        return client

    def _presence_payload(self, state: str, **extra: Any) -> bytes:
        assert self._presence is not None
        return self._presence.build(self._presence_kind, presence_body(state, **extra)).to_bytes()

    def _set_will(self, client: mqtt.Client) -> None:
        # A fresh will per connection keeps its message id unique, so a subscriber that drops
        # duplicate ids still stores the "offline" of a second outage.
        if self.config.status_topic is None:
            return
        payload = self._presence_payload(OFFLINE, reason="connection lost (last will)")
        client.will_set(self.config.status_topic, payload, qos=1, retain=True)

    def _guard(self, callback: Callable[..., None]) -> Callable[..., None]:
        """Wrap a paho callback so an exception is logged and counted instead of reaching the network loop."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - a callback must never kill paho's loop
                self._counters.hook_errors += 1
                logger.exception("MQTT callback %s failed for client %r: %s", callback.__name__, self.config.client_id, exc)

        guarded.__name__ = callback.__name__
        return guarded

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; returns at once. Use `wait_connected` to block."""
        if self._closed:
            raise TransportError(f"MQTT client {self.config.client_id!r} is stopped: create a new MqttClient")
        if self._started:
            return
        self._started = True
        try:
            self._paho.connect_async(
                self.config.host,
                self.config.port,
                keepalive=int(self.config.keepalive),
                clean_start=self.config.clean_start if self.config.is_v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=connect_properties(self.config),
            )
        except ValueError as exc:
            raise MqttConfigError(f"cannot connect to {self.config.address}: {exc}") from exc
        self._network_thread = threading.Thread(target=self._run_network, name=f"mqtt-net-{self.config.client_id}", daemon=True)
        self._sender_thread = threading.Thread(target=self._run_sender, name=f"mqtt-send-{self.config.client_id}", daemon=True)
        self._network_thread.start()
        self._sender_thread.start()
        logger.info("MQTT client %r connecting to %s (MQTT %s)", self.config.client_id, self.config.address, self.config.protocol)

    def _run_network(self) -> None:
        try:
            self._paho.loop_forever(retry_first_connection=True)
        except Exception as exc:  # noqa: BLE001 - reported, the thread is the only place to see it
            self._counters.last_error = f"network loop stopped: {exc}"
            logger.exception("MQTT network loop of client %r stopped unexpectedly: %s", self.config.client_id, exc)
        finally:
            self.connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or `timeout` seconds passed; return whether connected."""
        return self.connected.wait(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Block until connected with every subscription acknowledged by the broker, or `timeout` passed."""
        return self.ready.wait(timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Block until the spool is empty (every message acknowledged) or `timeout` passed."""
        deadline = time.monotonic() + timeout
        while self.spool.depth > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(0.05, remaining))
        return True

    def stop(self, timeout: float = 10.0, *, flush: bool = True) -> bool:
        """Flush (when connected), publish "offline", disconnect and join the threads.

        Waits at most about `timeout` seconds in total, and at most half of it
        for the flush. Unacknowledged messages stay in the spool for the next
        run. Returns False when the flush timed out while connected or a thread
        did not stop. Safe to call twice, but not from a handler or hook.
        """
        if self._closed:
            return True
        if threading.current_thread() in (self._network_thread, self._sender_thread):
            raise TransportError(
                f"MQTT client {self.config.client_id!r}: stop() was called from a handler or hook, which runs on the "
                "client's own thread and cannot wait for itself; signal another thread to call stop()"
            )
        deadline = time.monotonic() + timeout
        clean = True
        if self._started and flush and self.connected.is_set():
            clean = self.wait_drained(timeout / 2)
            if not clean:
                logger.warning("MQTT client %r stopping with %d messages still in the spool", self.config.client_id, self.spool.depth)
        self._stopping = True
        self._wake.set()
        clean &= self._join(self._sender_thread, deadline, "sender")
        if self._started:
            self._publish_offline(deadline)
            clean &= self._disconnect_and_join(deadline)
        self._closed = True
        if self._owns_spool:
            self.spool.close()
        logger.info("MQTT client %r stopped (%s)", self.config.client_id, "clean" if clean else "not clean, see warnings above")
        return clean

    def _publish_offline(self, deadline: float) -> None:
        if self.config.status_topic is None or not self.connected.is_set():
            return
        payload = self._presence_payload(OFFLINE, reason="clean stop")
        info = self._paho.publish(self.config.status_topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(max(0.1, min(2.0, deadline - time.monotonic())))
        except (RuntimeError, ValueError) as exc:
            logger.warning("MQTT client %r could not publish 'offline' on %s: %s", self.config.client_id, self.config.status_topic, exc)

    def _disconnect_and_join(self, deadline: float) -> bool:
        thread = self._network_thread
        # A reconnect attempt in progress can override the disconnected state, so repeat once a second.
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            self._paho.disconnect()
            thread.join(min(1.0, max(0.0, deadline - time.monotonic())))
        return self._join(thread, deadline, "network")

    def _join(self, thread: threading.Thread | None, deadline: float, name: str) -> bool:
        if thread is None:
            return True
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.error("MQTT %s thread of client %r did not stop within the timeout; it is left running as a daemon thread", name, self.config.client_id)
            return False
        return True

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> MqttClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- publishing -----------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str | Envelope,
        qos: int | None = None,
        retain: bool = False,
        priority: int | None = None,
        properties: Properties | None = None,
    ) -> int | None:
        """Queue one message; return its spool id (QoS >= 1) or None (QoS 0, or dropped by the spool limit).

        `qos` None uses the configured QoS of the topic's kind, `priority`
        None the kind's default priority. MQTT 5 `properties` are kept in the
        spool and ignored under MQTT 3.1.1.
        """
        if self._closed:
            raise TransportError(f"MQTT client {self.config.client_id!r} is stopped: publish before stop() or create a new client")
        if not topic or "+" in topic or "#" in topic or "\x00" in topic or len(topic.encode()) > 65535:
            raise TopicError(f"cannot publish to topic {topic!r:.200}: a topic name must be 1 to 65535 bytes without wildcards or NUL")
        kind = kind_of_topic(topic)
        if isinstance(payload, Envelope):
            kind = payload.kind
            data = payload.to_bytes()
        else:
            data = payload.encode() if isinstance(payload, str) else bytes(payload)
        self._check_size(topic, data)
        qos = self.config.qos_for(kind) if qos is None else qos
        if qos not in (0, 1, 2):
            raise ValueError(f"qos {qos!r} is invalid: use 0, 1 or 2")
        if qos == 0:
            self._publish_qos0(topic, data, retain, properties)
            return None
        spool_id = self.spool.put(
            topic, data, qos=qos, retain=retain,
            priority=int(default_priority(kind) if priority is None else priority),
            kind=kind.value if kind is not None else "other",
            properties=properties_to_dict(properties) if self.config.is_v5 else None,
        )
        self._counters.published += 1
        self._wake.set()
        return spool_id

    def _check_size(self, topic: str, data: bytes) -> None:
        limit = self.config.max_payload_bytes
        if limit is not None and len(data) > limit:
            raise PayloadError(
                "payload",
                f"is {len(data)} bytes for topic {topic!r}, above max_payload_bytes = {limit}: "
                "send a smaller message (a smaller JPEG for escalations) or raise the limit together with the broker's message_size_limit",
            )
        if self._max_packet is not None and len(data) + len(topic.encode()) + 64 > self._max_packet:
            raise PayloadError(
                "payload",
                f"is {len(data)} bytes for topic {topic!r}, which does not fit the broker's Maximum Packet Size of {self._max_packet} bytes",
            )

    def _publish_qos0(self, topic: str, data: bytes, retain: bool, properties: Properties | None) -> None:
        if not self.connected.is_set():
            self._counters.qos0_dropped += 1
            return
        info = self._paho.publish(topic, data, qos=0, retain=retain, properties=properties if self.config.is_v5 else None)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._counters.qos0_sent += 1
        else:
            self._counters.qos0_dropped += 1

    def _run_sender(self) -> None:
        while not self._stopping:
            self._wake.wait(0.5)
            self._wake.clear()
            self._coalesce_acks()
            try:
                self._process_acks()
                if self.connected.is_set():
                    self._fill_window()
            except Exception as exc:  # noqa: BLE001 - keep sending; the spool keeps the messages
                self._counters.last_error = f"sender: {exc}"
                logger.exception("MQTT sender of client %r failed, retrying in 1 s: %s", self.config.client_id, exc)
                time.sleep(1.0)
        self._process_acks()

    def _coalesce_acks(self) -> None:
        # Each ack costs one SQLite transaction, so while many messages are in flight wait up to
        # 2 ms for a quarter of the window to be acknowledged and delete them together.
        quarter = max(1, self._window // 4)
        deadline = time.monotonic() + 0.002
        while 0 < len(self._acks) < quarter and len(self._inflight) >= quarter and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _fill_window(self) -> None:
        with self._lock:
            if self._inflight and time.monotonic() < self._hold_until:
                return
            self._hold_until = 0.0
            free = self._window - len(self._inflight)
            exclude = [entry.message.id for entry in self._inflight.values()]
        if free <= 0:
            return
        for message in self.spool.peek(free, exclude):
            if not self.connected.is_set() or self._stopping:
                return
            try:
                self._check_size(message.topic, message.payload)
                properties = properties_from_dict(message.properties) if self.config.is_v5 else None
                generation = self._paho_generation
                # Never under self._lock: a failed write makes paho call on_disconnect on this thread,
                # and the network thread's callbacks take self._lock while paho holds its own locks.
                info = self._paho.publish(message.topic, message.payload, qos=message.qos, retain=message.retain, properties=properties)
            except ValueError as exc:
                # paho rejects an invalid topic or an oversized payload; retrying would block the queue forever.
                self._reject_unsendable(message, exc)
                continue
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # NO_CONN: paho keeps the message and sends it after the reconnect.
                with self._lock:
                    # After drop_out_messages() paho no longer has it; the row stays in the spool and goes out again.
                    if generation == self._paho_generation:
                        self._inflight[info.mid] = _InFlight(message, time.monotonic())
                continue
            logger.warning("paho did not take spooled message %d on %s (%s); retrying later", message.id, message.topic, info.rc)
            return

    def _reject_unsendable(self, message: SpooledMessage, error: Exception) -> None:
        self.spool.remove([message.id])
        with self._lock:
            self._counters.rejected[message.kind] += 1
        self._counters.last_error = f"message {message.id} on {message.topic} cannot be sent: {error}"
        self._failure_log.error(
            "spooled message %d on %r cannot be sent (%s); it is removed from the spool and counted as rejected",
            message.id, message.topic, error,
        )

    # --- acknowledgements -----------------------------------------------------------------------

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties) -> None:
        # Runs on the network thread while paho holds its message lock: only queue the ack here and
        # let the sender thread do the SQLite work, so no lock order can deadlock with publish().
        self._acks.append((mid, reason_code, time.monotonic()))
        if mid in self._inflight:  # a QoS 0 send calls on_publish too, and proves nothing
            self._acks_this_connection += 1
        self._wake.set()

    def _process_acks(self) -> None:
        acked: list[tuple[_InFlight, ReasonCode | None, float]] = []
        with self._lock:
            while self._acks:
                mid, reason_code, acked_mono = self._acks.popleft()
                entry = self._inflight.pop(mid, None)
                if entry is not None:
                    acked.append((entry, reason_code, acked_mono))
        if not acked:
            return
        self.spool.remove([entry.message.id for entry, _, _ in acked])
        now = time.time()
        for entry, reason_code, acked_mono in acked:
            self._record_ack(entry, reason_code, acked_mono, now)

    def _record_ack(self, entry: _InFlight, reason_code: ReasonCode | None, acked_mono: float, now: float) -> None:
        message = entry.message
        if reason_code is not None and reason_code.is_failure:
            with self._lock:
                self._counters.rejected[message.kind] += 1
            self._failure_log.error(
                "broker rejected message %d on %s with reason %s; it is removed from the spool and counted as rejected",
                message.id, message.topic, reason_code,
            )
            return
        self._counters.acked += 1
        delivery = Delivery(
            spool_id=message.id, topic=message.topic, kind=message.kind, priority=message.priority,
            created=message.created, latency_s=max(0.0, now - message.created), rtt_s=acked_mono - entry.sent_mono,
        )
        self._latency.add_seconds(delivery.latency_s)
        self._rtt.add_seconds(acked_mono - entry.sent_mono)
        if self.on_ack is not None:
            try:
                self.on_ack(delivery)
            except Exception as exc:  # noqa: BLE001 - a hook must not stop the sender
                self._counters.hook_errors += 1
                logger.exception("on_ack hook failed for spool id %d on %s: %s", message.id, message.topic, exc)

    # --- connection callbacks -------------------------------------------------------------------

    def _handle_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self._counters.connect_failures += 1
            self._counters.last_error = f"broker rejected the connection: {reason_code}"
            self._failure_log.error(
                "broker %s rejected the connection of client %r: %s (attempt %d); retrying with backoff up to %.0f s",
                self.config.address, self.config.client_id, reason_code, self._counters.connect_failures, self.config.reconnect_max_delay,
            )
            return
        self._counters.connects += 1
        self._connected_mono = time.monotonic()
        self._acks_this_connection = 0
        if self._poison is not None:
            self._drop_poison(client, self._poison)
        logger.info(
            "MQTT client %r connected to %s (session present: %s, %d messages spooled)",
            self.config.client_id, self.config.address, flags.session_present, self.spool.depth,
        )
        if self.config.status_topic is not None:
            client.publish(self.config.status_topic, self._presence_payload(ONLINE), qos=1, retain=True)
        self._apply_connack_limits(properties)
        with self._lock:
            # paho resends the messages that were in flight right after this callback. New ones wait
            # until those are acknowledged (at most RESEND_HOLD_S), so the backlog stays in order.
            self._hold_until = time.monotonic() + RESEND_HOLD_S if self._inflight else 0.0
        if not flags.session_present or not self._first_connect_done:
            self._resubscribe(client)
        self._first_connect_done = True
        self.connected.set()
        self._update_ready()
        self._wake.set()
        self._notify_connection(True, str(reason_code))

    def _apply_connack_limits(self, properties: Properties | None) -> None:
        # paho 2.2 enforces neither the broker's Receive Maximum nor its Maximum Packet Size (MQTT 5),
        # and a broker may disconnect a client that exceeds them. One slot of the window is left for
        # presence messages, which bypass it.
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        self._max_packet = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
        window = self.config.inflight_window
        if receive_maximum:
            window = max(1, min(window, int(receive_maximum) - 1))
        if window != self._window:
            logger.info("MQTT client %r sends at most %d unacknowledged messages (broker Receive Maximum %s)", self.config.client_id, window, receive_maximum)
        self._window = window

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._counters.connect_failures += 1
        cause = getattr(client, "last_connect_error", None)
        detail = f": {cause}" if cause is not None else ""
        self._counters.last_error = f"cannot reach broker {self.config.address}{detail}"
        self._failure_log.warning(
            "MQTT client %r cannot reach broker %s%s (attempt %d); retrying with backoff up to %.0f s",
            self.config.client_id, self.config.address, detail, self._counters.connect_failures, self.config.reconnect_max_delay,
        )

    def _handle_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason_code: ReasonCode, properties: Properties | None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.ready.clear()
        with self._lock:
            self._pending_subscribes.clear()
            self._early_subacks.clear()
        self._set_will(client)
        if not was_connected:
            return
        self._counters.disconnects += 1
        if not self._stopping:
            self._count_strike(reason_code)
        if self._stopping:
            logger.info("MQTT client %r disconnected from %s", self.config.client_id, self.config.address)
        else:
            self._counters.last_error = f"connection lost: {reason_code}"
            logger.warning(
                "MQTT client %r lost the connection to %s (%s); %d messages in flight, %d spooled; reconnecting",
                self.config.client_id, self.config.address, reason_code, len(self._inflight), self.spool.depth,
            )
        self._notify_connection(False, str(reason_code))

    def _count_strike(self, reason_code: ReasonCode | None = None) -> None:
        """Track the message in flight first while the broker keeps closing young connections.

        Such a message (a topic the broker finds malformed, say) would
        otherwise be resent after every reconnect and block everything behind
        it. After POISON_STRIKES strikes the next connect removes it.
        """
        with self._lock:
            young = time.monotonic() - self._connected_mono < POISON_WINDOW_S
            oldest = next(iter(self._inflight.values()), None)
            benign = reason_code is not None and reason_code.value in NOT_A_MESSAGE_FAULT
            if not young or benign or self._acks_this_connection or oldest is None:
                self._strikes, self._strike_id = 0, None
                return
            if oldest.message.id == self._strike_id:
                self._strikes += 1
            else:
                self._strikes, self._strike_id = 1, oldest.message.id
            if self._strikes >= POISON_STRIKES:
                self._poison = oldest.message
                self._strikes, self._strike_id = 0, None

    def _drop_poison(self, client: mqtt.Client, message: SpooledMessage) -> None:
        """Remove the suspected message before paho resends it, and let the spool resend the others.

        Runs in on_connect, before paho's resend loop: `drop_out_messages()`
        empties paho's queue, and the rows of the other messages, still in the
        spool, go out again from the sender thread (at least once).
        """
        self._poison = None
        self.spool.remove([message.id])
        # paho is never called under self._lock, because the sender thread may hold paho's
        # queue lock while a failed write calls back into this client. Bumping the generation
        # before and after the drop keeps any publish racing with it out of _inflight. Its row
        # is then sent again from the spool, possibly twice, instead of waiting for a lost ack.
        with self._lock:
            self._paho_generation += 1
            resent = sum(1 for entry in self._inflight.values() if entry.message.id != message.id)
            self._inflight.clear()
            self._counters.rejected[message.kind] += 1
        client.drop_out_messages()
        with self._lock:
            self._paho_generation += 1
            self._inflight.clear()
        self._counters.last_error = f"message {message.id} on {message.topic} removed: the broker closed the connection each time it was sent"
        logger.error(
            "spooled message %d (%s) on %r was in flight each of the last %d times the broker closed the connection within %.0f s "
            "of connecting; it is removed from the spool and counted as rejected, and %d other messages go out again. "
            "Check the broker log for why it closed the connection",
            message.id, message.kind, message.topic, POISON_STRIKES, POISON_WINDOW_S, resent,
        )

    def _notify_connection(self, connected: bool, reason: str) -> None:
        if self.on_connection_change is None:
            return
        try:
            self.on_connection_change(connected, reason)
        except Exception as exc:  # noqa: BLE001 - a hook must not stop the network loop
            self._counters.hook_errors += 1
            logger.exception("on_connection_change hook failed: %s", exc)

    # --- subscriptions --------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Register `handler` for `topic_filter` (may be `$share/group/...`) and subscribe now if connected."""
        if qos not in (0, 1, 2):
            raise ValueError(f"qos {qos!r} is invalid: use 0, 1 or 2")
        strip_shared(topic_filter)
        with self._lock:
            self._subscriptions[topic_filter] = (handler, qos)
        if self.connected.is_set():
            self._send_subscribe(self._paho, [(topic_filter, qos)])

    def unsubscribe(self, topic_filter: str) -> None:
        with self._lock:
            removed = self._subscriptions.pop(topic_filter, None)
        if removed is not None and self.connected.is_set():
            self._paho.unsubscribe(topic_filter)

    def _resubscribe(self, client: mqtt.Client) -> None:
        with self._lock:
            entries = [(topic_filter, qos) for topic_filter, (_, qos) in self._subscriptions.items()]
        if entries:
            self._send_subscribe(client, entries)

    def _send_subscribe(self, client: mqtt.Client, entries: list[tuple[str, int]]) -> None:
        result, mid = client.subscribe(entries)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            logger.warning("SUBSCRIBE for %s not sent (%s); it is sent again after the next reconnect", [f for f, _ in entries], result)
            return
        with self._lock:
            if mid in self._early_subacks:
                # The SUBACK was handled before this thread got here.
                self._early_subacks.discard(mid)
                return
            self.ready.clear()
            self._pending_subscribes[mid] = [topic_filter for topic_filter, _ in entries]

    def _handle_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        with self._lock:
            if mid not in self._pending_subscribes:
                self._early_subacks.add(mid)
            filters = self._pending_subscribes.pop(mid, [])
        for topic_filter, reason_code in zip(filters, reason_codes):
            if reason_code.is_failure:
                self._counters.subscribe_failures += 1
                self._counters.last_error = f"subscription to {topic_filter} rejected: {reason_code}"
                logger.error("broker rejected the subscription to %r: %s; check the broker's ACL for this client", topic_filter, reason_code)
            else:
                logger.debug("subscribed to %r with %s", topic_filter, reason_code)
        self._update_ready()

    def _update_ready(self) -> None:
        # Under the lock, so a SUBSCRIBE registered by another thread cannot slip between check and set.
        with self._lock:
            if self.connected.is_set() and not self._pending_subscribes:
                self.ready.set()

    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for f, (h, _) in self._subscriptions.items() if mqtt.topic_matches_sub(strip_shared(f), message.topic)]
        ack = None
        if self.config.manual_ack and message.qos > 0:
            ack = _once(lambda: client.ack(message.mid, message.qos))
        inbound = InboundMessage(
            topic=message.topic, payload=bytes(message.payload), qos=message.qos, retain=bool(message.retain),
            mid=message.mid, properties=getattr(message, "properties", None), _ack=ack,
        )
        if not handlers:
            logger.debug("no handler for message on %s (mid %d)", message.topic, message.mid)
        for handler in handlers:
            try:
                handler(inbound)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the subscriber
                self._counters.handler_errors += 1
                logger.exception("handler for %s failed on mid %d: %s", message.topic, message.mid, exc)
                # NOTE: acknowledged anyway, so a message that always fails is not redelivered forever.
                inbound.ack()
        if not handlers:
            inbound.ack()

    # --- status ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for a status record; every value is JSON-serializable."""
        spool = self.spool.stats()
        counters = self._counters
        with self._lock:
            inflight = len(self._inflight)
            rejected = dict(counters.rejected)
        return {
            "connected": self.connected.is_set(),
            "queued": counters.published,
            "inflight": inflight,
            "acked": counters.acked,
            "rejected": rejected,
            "dropped": spool["dropped"],
            "dropped_total": spool["dropped_total"],
            "spool_depth": spool["depth"],
            "spool_bytes": spool["bytes"],
            "qos0_sent": counters.qos0_sent,
            "qos0_dropped": counters.qos0_dropped,
            "ack_latency_ms": self._latency.summary(),
            "rtt_ms": self._rtt.summary(),
            "connects": counters.connects,
            "disconnects": counters.disconnects,
            "connect_failures": counters.connect_failures,
            "subscribe_failures": counters.subscribe_failures,
            "handler_errors": counters.handler_errors,
            "hook_errors": counters.hook_errors,
            "last_error": counters.last_error,
        }


def _once(action: Callable[[], Any]) -> Callable[[], None]:
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        action()

    return run
