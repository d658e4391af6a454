"""Wire format of the MCU link: frames, message types and payload layouts (version 1).

This module is the only Python code that defines the layout. docs/mcu_protocol.md
describes it byte by byte, and firmware_bridge/c/mcu_frame.c implements the
frame layer for the MCU. A frame before stuffing is

    version u8 | type u8 | seq u8 | flags u8 | length u8 | payload[length] | crc16 u16 big-endian

with CRC-16/CCITT-FALSE over every byte before the CRC. On the wire each
frame is COBS-encoded and followed by one 0x00 delimiter. Multi-byte payload
fields are little-endian.
"""

from __future__ import annotations

import dataclasses
import enum
import struct

from firmware_bridge.cobs import cobs_decode, cobs_encode
from firmware_bridge.crc import crc16_ccitt_false
from firmware_bridge.errors import CobsError, McuCrcError, McuFrameError

PROTOCOL_VERSION = 1
HEADER_SIZE = 5
CRC_SIZE = 2
MAX_PAYLOAD = 32
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# COBS adds one byte per started 254 bytes plus one; the delimiter adds one more.
MAX_WIRE_FRAME = MAX_FRAME + MAX_FRAME // 254 + 2
FLAG_ACK_REQUEST = 0x01
DELIMITER = b"\x00"

SPEED_UNKNOWN = 0xFFFF
STEERING_UNKNOWN = 0x7FFF


class MessageType(enum.IntEnum):
    HEARTBEAT = 0x01
    VEHICLE_STATE = 0x02
    DRIVER_ALERT = 0x03
    ACK = 0x04


class Gear(enum.IntEnum):
    UNKNOWN = 0
    PARK = 1
    REVERSE = 2
    NEUTRAL = 3
    DRIVE = 4


class AlertKind(enum.IntEnum):
    GENERIC = 0
    STOP_SIGN = 1
    SPEED_LIMIT = 2
    PEDESTRIAN = 3
    VEHICLE_AHEAD = 4
    LANE_DEPARTURE = 5


class AlertSeverity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2


class AckStatus(enum.IntEnum):
    ACCEPTED = 0
    UNSUPPORTED_TYPE = 1
    INVALID_PAYLOAD = 2


class NodeState(enum.IntEnum):
    OK = 0
    DEGRADED = 1
    FAULT = 2


INDICATOR_LEFT = 0x01
INDICATOR_RIGHT = 0x02
INDICATOR_HAZARD = 0x04


@dataclasses.dataclass(frozen=True, slots=True)
class McuFrame:
    """One frame after COBS decoding and CRC check; `payload` is still raw bytes."""

    message_type: int
    seq: int
    flags: int
    payload: bytes
    version: int = PROTOCOL_VERSION

    @property
    def ack_requested(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQUEST)


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent both ways; `uptime_ms` wraps at 2**32."""

    uptime_ms: int
    state: NodeState = NodeState.OK


@dataclasses.dataclass(frozen=True, slots=True)
class VehicleState:
    """MCU to edge-sdk. Speed in km/h, steering angle in degrees (left positive); None = unknown."""

    speed_kmh: float | None
    steering_angle_deg: float | None
    gear: Gear
    indicators: int

    @property
    def left_indicator(self) -> bool:
        return bool(self.indicators & INDICATOR_LEFT)

    @property
    def right_indicator(self) -> bool:
        return bool(self.indicators & INDICATOR_RIGHT)

    @property
    def hazard(self) -> bool:
        return bool(self.indicators & INDICATOR_HAZARD)


@dataclasses.dataclass(frozen=True, slots=True)
class DriverAlert:
    """edge-sdk to MCU: what to show or sound; `text_id` indexes the MCU's message table."""

    kind: AlertKind
    severity: AlertSeverity
    text_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    """Reply to a frame sent with FLAG_ACK_REQUEST."""

    acked_type: int
    acked_seq: int
    status: AckStatus


McuMessage = Heartbeat | VehicleState | DriverAlert | Ack

_LAYOUTS: dict[MessageType, struct.Struct] = {
    MessageType.HEARTBEAT: struct.Struct("<IB"),
    MessageType.VEHICLE_STATE: struct.Struct("<HhBB"),
    MessageType.DRIVER_ALERT: struct.Struct("<BBH"),
    MessageType.ACK: struct.Struct("<BBB"),
}


def encode_frame(frame: McuFrame) -> bytes:
    """Build the wire bytes of `frame`: COBS(header + payload + CRC) followed by 0x00."""
    for name, value in (("version", frame.version), ("type", frame.message_type), ("seq", frame.seq), ("flags", frame.flags)):
        if not 0 <= value <= 0xFF:
            raise McuFrameError(f"frame {name} {value} does not fit in one byte", "length")
    if len(frame.payload) > MAX_PAYLOAD:
        raise McuFrameError(f"payload of {len(frame.payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit of protocol version 1", "length")
    raw = bytes((frame.version, frame.message_type, frame.seq, frame.flags, len(frame.payload))) + frame.payload
    raw += crc16_ccitt_false(raw).to_bytes(2, "big")
    return cobs_encode(raw) + DELIMITER


def decode_frame(block: bytes) -> McuFrame:
    """Check and split one COBS block (without its 0x00 delimiter).

    Checks run in the same order as the C codec: COBS, minimum length, CRC,
    version, length field. Raises CobsError, McuCrcError or McuFrameError.
    """
    if len(block) > MAX_WIRE_FRAME - 1:
        raise McuFrameError(f"block of {len(block)} bytes is longer than the {MAX_WIRE_FRAME - 1}-byte maximum", "length")
    try:
        raw = cobs_decode(block)
    except CobsError as exc:
        raise McuFrameError(str(exc), "cobs") from exc
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise McuFrameError(f"frame of {len(raw)} bytes is shorter than the {HEADER_SIZE + CRC_SIZE}-byte minimum", "length")
    expected = int.from_bytes(raw[-2:], "big")
    computed = crc16_ccitt_false(raw[:-2])
    if expected != computed:
        raise McuCrcError(f"frame CRC is {expected:04X} but the computed CRC is {computed:04X}: the frame was corrupted in transit")
    if raw[0] != PROTOCOL_VERSION:
        raise McuFrameError(f"frame version {raw[0]} is not supported: this side speaks version {PROTOCOL_VERSION}; update the firmware or edge-sdk", "version")
    length = raw[4]
    if length > MAX_PAYLOAD or HEADER_SIZE + length + CRC_SIZE != len(raw):
        raise McuFrameError(f"length field {length} does not match the {len(raw) - HEADER_SIZE - CRC_SIZE} payload bytes received", "length")
    return McuFrame(raw[1], raw[2], raw[3], bytes(raw[HEADER_SIZE:-CRC_SIZE]), raw[0])


def encode_payload(message: McuMessage) -> tuple[MessageType, bytes]:
    """Return the message type and payload bytes of `message`."""
    try:
        if isinstance(message, Heartbeat):
            return MessageType.HEARTBEAT, _LAYOUTS[MessageType.HEARTBEAT].pack(message.uptime_ms & 0xFFFFFFFF, message.state)
        if isinstance(message, VehicleState):
            return MessageType.VEHICLE_STATE, _LAYOUTS[MessageType.VEHICLE_STATE].pack(
                SPEED_UNKNOWN if message.speed_kmh is None else round(message.speed_kmh * 100),
                STEERING_UNKNOWN if message.steering_angle_deg is None else round(message.steering_angle_deg * 10),
                message.gear,
                message.indicators,
            )
        if isinstance(message, DriverAlert):
            return MessageType.DRIVER_ALERT, _LAYOUTS[MessageType.DRIVER_ALERT].pack(message.kind, message.severity, message.text_id)
        if isinstance(message, Ack):
            return MessageType.ACK, _LAYOUTS[MessageType.ACK].pack(message.acked_type, message.acked_seq, message.status)
    except struct.error as exc:
        raise McuFrameError(f"{message!r} does not fit its payload layout: {exc}", "payload") from exc
    raise TypeError(f"{type(message).__name__} is not an MCU message type")


def decode_payload(frame: McuFrame) -> McuMessage:
    """Decode the payload of `frame` into its message record."""
    try:
        message_type = MessageType(frame.message_type)
    except ValueError:
        raise McuFrameError(f"message type {frame.message_type:#04x} is unknown to protocol version {PROTOCOL_VERSION}", "type") from None
    layout = _LAYOUTS[message_type]
    if len(frame.payload) != layout.size:
        raise McuFrameError(f"{message_type.name} payload is {len(frame.payload)} bytes, expected {layout.size}", "payload")
    fields = layout.unpack(frame.payload)
    try:
        return _build_message(message_type, fields)
    except ValueError as exc:
        raise McuFrameError(f"{message_type.name} payload {frame.payload.hex()} has an invalid field: {exc}", "payload") from None


def _build_message(message_type: MessageType, fields: tuple[int, ...]) -> McuMessage:
    if message_type is MessageType.HEARTBEAT:
        return Heartbeat(fields[0], NodeState(fields[1]))
    if message_type is MessageType.VEHICLE_STATE:
        speed, steering, gear, indicators = fields
        return VehicleState(
            None if speed == SPEED_UNKNOWN else speed / 100.0,
            None if steering == STEERING_UNKNOWN else steering / 10.0,
            Gear(gear),
            indicators,
        )
    if message_type is MessageType.DRIVER_ALERT:
        return DriverAlert(AlertKind(fields[0]), AlertSeverity(fields[1]), fields[2])
    return Ack(fields[0], fields[1], AckStatus(fields[2]))


def encode_message(message: McuMessage, seq: int, *, ack_request: bool) -> bytes:
    """Build the wire bytes of `message` with sequence number `seq` (0..255)."""
    message_type, payload = encode_payload(message)
    return encode_frame(McuFrame(message_type, seq, FLAG_ACK_REQUEST if ack_request else 0, payload))
