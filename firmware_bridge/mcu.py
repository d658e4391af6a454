"""The MCU link: sends driver alerts and heartbeats, receives vehicle state and heartbeats.

Every frame carries a sequence number (0..255, wrapping). The receiver of a
frame sent with FLAG_ACK_REQUEST replies with an ACK frame naming its type and
sequence number. The sender retries until the ACK arrives or the retries run out. A
receiver that gets the same (type, seq) twice in a row acknowledges again but
delivers the message once, so a lost ACK does not duplicate an alert.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware_bridge.errors import McuAckTimeoutError, McuFrameError, McuRejectedError, check_number
from firmware_bridge.framing import DelimitedFramer
from firmware_bridge.link import LinkSettings, SerialLink
from firmware_bridge.mcu_protocol import (
    DELIMITER,
    MAX_WIRE_FRAME,
    Ack,
    AckStatus,
    Heartbeat,
    McuMessage,
    MessageType,
    NodeState,
    decode_frame,
    decode_payload,
    encode_message,
    encode_payload,
)

logger = logging.getLogger(__name__)

# Pending send: expected message type, event set on its ACK, and the ACK received.
_AckWaiter = tuple[int, threading.Event, list[Ack]]


@dataclasses.dataclass(frozen=True, slots=True)
class McuSettings:
    """Protocol timing of the MCU link.

    Attributes:
        ack_timeout_s: wait for an ACK after each send attempt, in seconds.
        retries: extra send attempts after the first one times out.
        heartbeat_interval_s: period of the heartbeat sent to the MCU; 0 disables it.
    """

    ack_timeout_s: float = 0.2
    retries: int = 3
    heartbeat_interval_s: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.ack_timeout_s, "mcu ack_timeout_s", positive=True)
        check_number(self.retries, "mcu retries", integer=True)
        check_number(self.heartbeat_interval_s, "mcu heartbeat_interval_s")


@dataclasses.dataclass(slots=True)
class McuCounters:
    """Protocol-level totals of the MCU link."""

    sent: int = 0
    retries: int = 0
    ack_timeouts: int = 0
    received: int = 0
    duplicates: int = 0
    unsupported: int = 0


class McuLink(SerialLink):
    """edge-sdk's end of the MCU link; `on_message` runs on the reader thread for each new message."""

    def __init__(
        self,
        name: str,
        settings: LinkSettings,
        mcu_settings: McuSettings,
        on_message: Callable[[McuMessage], None] | None = None,
    ) -> None:
        super().__init__(name, settings, DelimitedFramer(DELIMITER, MAX_WIRE_FRAME, skip_empty=True))
        self.mcu_settings = mcu_settings
        self.on_message = on_message
        self.mcu_counters = McuCounters()
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[int, _AckWaiter] = {}
        self._last_received: tuple[int, int] | None = None
        self._last_heartbeat_at: float | None = None
        self._next_heartbeat = 0.0
        self._started_at = time.monotonic()

    def send(self, message: McuMessage, *, require_ack: bool = True) -> None:
        """Send `message`; with `require_ack`, retry until the MCU acknowledges it.

        Raises McuAckTimeoutError after `retries` + 1 attempts without an ACK,
        McuRejectedError when the MCU replies with an ACK status other than
        ACCEPTED, and LinkClosedError while the link is down.
        """
        with self._seq_lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
        wire = encode_message(message, seq, ack_request=require_ack)
        if not require_ack:
            self.write(wire)
            self.mcu_counters.sent += 1
            return
        message_type, _ = encode_payload(message)
        waiter: _AckWaiter = (int(message_type), threading.Event(), [])
        with self._send_lock:
            self._pending[seq] = waiter
            try:
                self._send_with_retry(message, seq, wire, waiter)
            finally:
                self._pending.pop(seq, None)

    def _send_with_retry(self, message: McuMessage, seq: int, wire: bytes, waiter: _AckWaiter) -> None:
        attempts = self.mcu_settings.retries + 1
        for attempt in range(attempts):
            if attempt:
                self.mcu_counters.retries += 1
                logger.info("link %s: no ACK for %s seq %d, retry %d of %d", self.name, type(message).__name__, seq, attempt, attempts - 1)
            self.write(wire)
            self.mcu_counters.sent += 1
            if waiter[1].wait(self.mcu_settings.ack_timeout_s):
                ack = waiter[2][0]
                if ack.status is not AckStatus.ACCEPTED:
                    raise McuRejectedError(
                        f"MCU rejected {type(message).__name__} seq {seq} with status {ack.status.name}: "
                        "check that the MCU firmware speaks the same protocol version as docs/mcu_protocol.md"
                    )
                return
        self.mcu_counters.ack_timeouts += 1
        raise McuAckTimeoutError(
            f"MCU on {self.settings.url} did not acknowledge {type(message).__name__} seq {seq} after {attempts} attempts "
            f"of {self.mcu_settings.ack_timeout_s} s: check the MCU link and its firmware"
        )

    def handle_frame(self, frame: bytes) -> None:
        decoded = decode_frame(frame)
        if decoded.message_type == MessageType.ACK:
            ack = decode_payload(decoded)
            assert isinstance(ack, Ack)
            waiter = self._pending.get(ack.acked_seq)
            if waiter is not None and waiter[0] == ack.acked_type and not waiter[1].is_set():
                waiter[2].append(ack)
                waiter[1].set()
            return
        key = (decoded.message_type, decoded.seq)
        duplicate = decoded.ack_requested and key == self._last_received
        try:
            message = decode_payload(decoded)
        except McuFrameError as exc:
            if decoded.ack_requested:
                status = AckStatus.UNSUPPORTED_TYPE if exc.reason == "type" else AckStatus.INVALID_PAYLOAD
                self._write_ack(decoded.message_type, decoded.seq, status)
            self.mcu_counters.unsupported += 1
            raise
        if decoded.ack_requested:
            self._write_ack(decoded.message_type, decoded.seq, AckStatus.ACCEPTED)
            self._last_received = key
        if duplicate:
            self.mcu_counters.duplicates += 1
            return
        self.mcu_counters.received += 1
        if isinstance(message, Heartbeat):
            self._last_heartbeat_at = time.monotonic()
        if self.on_message is not None:
            self.on_message(message)

    def _write_ack(self, message_type: int, seq: int, status: AckStatus) -> None:
        self.write(encode_message(Ack(message_type, seq, status), 0, ack_request=False))

    def pump_once(self) -> None:
        super().pump_once()
        interval = self.mcu_settings.heartbeat_interval_s
        now = time.monotonic()
        if interval and now >= self._next_heartbeat:
            self._next_heartbeat = now + interval
            uptime_ms = int((now - self._started_at) * 1000) & 0xFFFFFFFF
            self.send(Heartbeat(uptime_ms, NodeState.OK), require_ack=False)

    def heartbeat_age_s(self) -> float | None:
        """Seconds since the last heartbeat from the MCU, or None before the first one."""
        at = self._last_heartbeat_at
        return None if at is None else time.monotonic() - at

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(dataclasses.asdict(self.mcu_counters))
        status["heartbeat_age_s"] = self.heartbeat_age_s()
        return status
