"""SLCAN (Lawicel ASCII) CAN adapters: frame codec and the adapter link.

Wire format, one line per frame ending with CR (0x0D):

    t iii L dd.. [ssss]   standard data frame, 11-bit id in 3 hex digits
    T iiiiiiii L dd.. [ssss]   extended data frame, 29-bit id in 8 hex digits
    r iii L [ssss] / R iiiiiiii L [ssss]   remote frames: DLC and no data

`L` is the DLC (0-8) and `ssss` an optional adapter timestamp in
milliseconds, 0..59999, wrapping every minute. The id width comes from the
frame letter, never from the id value. The adapter responds to each command
(`S6`, `O`, `C`, `V`, ...) with CR on success or BEL (0x07) on error.
`SlcanLink` sends commands one at a time and waits for that response.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import can

from firmware_bridge.errors import BridgeConfigError, LinkError, SlcanCommandError, SlcanError, SlcanTimeoutError, check_number
from firmware_bridge.framing import DelimitedFramer
from firmware_bridge.link import LinkSettings, SerialLink

logger = logging.getLogger(__name__)

BEL = b"\x07"
CR = b"\r"
MAX_LINE_LENGTH = 1 + 8 + 1 + 16 + 4 + 1
TIMESTAMP_MODULO_MS = 60000

# Lawicel `Sn` bitrate codes.
BITRATE_CODES: dict[int, str] = {
    10000: "S0", 20000: "S1", 50000: "S2", 100000: "S3", 125000: "S4",
    250000: "S5", 500000: "S6", 800000: "S7", 1000000: "S8",
}

# Frame letter -> (id digits, extended id, remote frame).
_FRAME_KINDS: dict[int, tuple[int, bool, bool]] = {
    ord("t"): (3, False, False),
    ord("T"): (8, True, False),
    ord("r"): (3, False, True),
    ord("R"): (8, True, True),
}
# Responses that may arrive after their command timed out: OK, transmit OK, error.
_LATE_RESPONSES = frozenset({b"", b"z", b"Z", BEL})
_HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")


@dataclasses.dataclass(frozen=True, slots=True)
class SlcanFrame:
    """A decoded frame; `adapter_time_ms` is the optional SLCAN timestamp (ms within the minute)."""

    message: can.Message
    adapter_time_ms: int | None


def encode_frame(message: can.Message, *, adapter_time_ms: int | None = None) -> bytes:
    """Encode a classic CAN frame as one SLCAN line ending with CR."""
    if message.is_fd or message.is_error_frame:
        raise SlcanError(f"frame {message.arbitration_id:#x} is a CAN FD or error frame: SLCAN carries classic data and remote frames only")
    dlc = message.dlc
    if not 0 <= dlc <= 8 or (not message.is_remote_frame and len(message.data) != dlc):
        raise SlcanError(f"frame {message.arbitration_id:#x} has DLC {dlc} and {len(message.data)} data bytes: classic CAN needs DLC 0..8 equal to the data length")
    if message.is_extended_id:
        if not 0 <= message.arbitration_id <= 0x1FFFFFFF:
            raise SlcanError(f"extended id {message.arbitration_id:#x} is outside 0..0x1FFFFFFF")
        head = f"{'R' if message.is_remote_frame else 'T'}{message.arbitration_id:08X}{dlc:d}"
    else:
        if not 0 <= message.arbitration_id <= 0x7FF:
            raise SlcanError(f"standard id {message.arbitration_id:#x} is outside 0..0x7FF: set is_extended_id=True for 29-bit ids")
        head = f"{'r' if message.is_remote_frame else 't'}{message.arbitration_id:03X}{dlc:d}"
    body = "" if message.is_remote_frame else bytes(message.data).hex().upper()
    tail = ""
    if adapter_time_ms is not None:
        if not 0 <= adapter_time_ms < TIMESTAMP_MODULO_MS:
            raise SlcanError(f"adapter timestamp {adapter_time_ms} ms is outside 0..59999")
        tail = f"{adapter_time_ms:04X}"
    return (head + body + tail).encode("ascii") + CR


def decode_frame(line: bytes, *, timestamp: float = 0.0) -> SlcanFrame:
    """Decode one SLCAN frame line (without its CR); raise SlcanError when it is malformed.

    `timestamp` becomes `message.timestamp` (the host reception time).
    """
    if not line:
        raise SlcanError("empty line is not a frame")
    kind = _FRAME_KINDS.get(line[0])
    if kind is None:
        raise SlcanError(f"line {line[:32]!r} does not start with a frame letter t, T, r or R")
    id_digits, extended, remote = kind
    if len(line) < 2 + id_digits or not _HEX_DIGITS.issuperset(line[1:]):
        raise SlcanError(f"line {line[:32]!r} is too short or contains a non-hex character")
    dlc = line[1 + id_digits] - 0x30
    if not 0 <= dlc <= 8:
        raise SlcanError(f"line {line[:32]!r} has DLC {chr(line[1 + id_digits])!r}: classic CAN allows 0..8")
    data_end = 2 + id_digits + (0 if remote else 2 * dlc)
    if len(line) not in (data_end, data_end + 4):
        raise SlcanError(f"line {line[:32]!r} is {len(line)} characters: DLC {dlc} needs {data_end}, or {data_end + 4} with a timestamp")
    arbitration_id = int(line[1 : 1 + id_digits], 16)
    if extended and arbitration_id > 0x1FFFFFFF:
        raise SlcanError(f"line {line[:32]!r} has extended id {arbitration_id:#x} above 0x1FFFFFFF")
    if not extended and arbitration_id > 0x7FF:
        raise SlcanError(f"line {line[:32]!r} has standard id {arbitration_id:#x} above 0x7FF")
    adapter_time = None
    if len(line) == data_end + 4:
        adapter_time = int(line[data_end:], 16)
        if adapter_time >= TIMESTAMP_MODULO_MS:
            raise SlcanError(f"line {line[:32]!r} has timestamp {adapter_time} ms: SLCAN timestamps wrap at 60000")
    data = b"" if remote else bytes.fromhex(line[2 + id_digits : data_end].decode("ascii"))
    message = can.Message(
        timestamp=timestamp,
        arbitration_id=arbitration_id,
        is_extended_id=extended,
        is_remote_frame=remote,
        dlc=dlc,
        data=data,
    )
    return SlcanFrame(message, adapter_time)


@dataclasses.dataclass(frozen=True, slots=True)
class SlcanSettings:
    """CAN-side settings of an SLCAN adapter.

    Attributes:
        bitrate: CAN bus bitrate in bit/s; one of BITRATE_CODES.
        listen_only: open with `L` (no ACKs, no transmit) instead of `O`.
        command_timeout_s: how long to wait for CR or BEL after each command.
    """

    bitrate: int = 500000
    listen_only: bool = True
    command_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.bitrate not in BITRATE_CODES:
            choices = ", ".join(str(rate) for rate in BITRATE_CODES)
            raise BridgeConfigError(f"CAN bitrate {self.bitrate!r} is not an SLCAN standard rate: use one of {choices}")
        check_number(self.command_timeout_s, "can command_timeout_s", positive=True)
        if not isinstance(self.listen_only, bool):
            raise BridgeConfigError(f"can listen_only {self.listen_only!r} is invalid: give true or false")


class SlcanLink(SerialLink):
    """An SLCAN adapter on a serial link: configures the channel after each open and delivers frames.

    `on_frame` runs on the reader thread for every valid frame; keep it short.
    """

    def __init__(
        self,
        name: str,
        settings: LinkSettings,
        can_settings: SlcanSettings,
        on_frame: Callable[[SlcanFrame], None] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, settings, DelimitedFramer(CR, MAX_LINE_LENGTH, single_tokens=BEL))
        self.can_settings = can_settings
        self.on_frame = on_frame
        self.channel_open = threading.Event()
        self._clock = clock
        self._command_lock = threading.Lock()
        self._responses: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._awaiting_response = False
        self._reader_ident: int | None = None

    def on_open(self) -> None:
        """Close any channel left open, set the bitrate and open the channel, one command at a time."""
        self.channel_open.clear()
        self._reader_ident = threading.get_ident()
        try:
            self.command("C")
        except SlcanCommandError:
            logger.debug("link %s: channel was already closed", self.name)
        self.command(BITRATE_CODES[self.can_settings.bitrate])
        self.command("L" if self.can_settings.listen_only else "O")
        self.channel_open.set()
        logger.info("link %s: CAN channel open at %d bit/s%s", self.name, self.can_settings.bitrate,
                    " (listen only)" if self.can_settings.listen_only else "")

    def on_close(self) -> None:
        self.channel_open.clear()

    def status(self) -> dict[str, Any]:
        status = super().status()
        status["channel_open"] = self.channel_open.is_set()
        return status

    def command(self, text: str) -> bytes:
        """Send one command and return the adapter's response line (without CR).

        Raises SlcanCommandError on BEL and SlcanTimeoutError when neither CR
        nor BEL arrives within `command_timeout_s`.
        """
        timeout = self.can_settings.command_timeout_s
        with self._command_lock:
            while not self._responses.empty():
                self._responses.get_nowait()
            self._awaiting_response = True
            try:
                self.write(text.encode("ascii") + CR)
                response = self._wait_response(timeout)
            finally:
                self._awaiting_response = False
        if response is None:
            raise SlcanTimeoutError(f"SLCAN adapter on {self.settings.url} did not respond to {text!r} within {timeout} s: check the adapter and its serial speed")
        if response == BEL:
            raise SlcanCommandError(f"SLCAN adapter on {self.settings.url} rejected command {text!r} with BEL: check the command and the channel state")
        return response

    def send(self, message: can.Message) -> None:
        """Transmit one frame; needs a channel opened with listen_only=False."""
        if self.can_settings.listen_only:
            raise LinkError(f"link {self.name} is listen-only: set listen_only=False to transmit frame {message.arbitration_id:#x}")
        self.command(encode_frame(message)[:-1].decode("ascii"))

    def _wait_response(self, timeout: float) -> bytes | None:
        if threading.get_ident() != self._reader_ident:
            try:
                return self._responses.get(timeout=timeout)
            except queue.Empty:
                return None
        # During on_open this runs on the reader thread, which then cannot deliver the response, so read the port here.
        deadline = _now() + timeout
        while _now() < deadline:
            self.pump_once()
            if not self._responses.empty():
                return self._responses.get_nowait()
        return None

    def handle_frame(self, frame: bytes) -> None:
        if frame and frame[0] in _FRAME_KINDS:
            clock = self._clock or _now
            decoded = decode_frame(frame, timestamp=clock())
            if self.on_frame is not None:
                self.on_frame(decoded)
            return
        if self._awaiting_response:
            self._responses.put(frame)
        elif frame in _LATE_RESPONSES:
            logger.debug("link %s: response %r arrived after its command timed out; ignored", self.name, frame)
        else:
            raise SlcanError(f"line {frame[:32]!r} is neither a frame nor a response to a pending command")


_now = time.monotonic
