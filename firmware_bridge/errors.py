"""Error tree of firmware_bridge.

The package does not depend on edge_sdk, so its root is
`FirmwareBridgeError`. Each class also inherits the matching builtin, so a caller can
catch `ValueError`, `OSError` or `TimeoutError` without importing this module.
"""

from __future__ import annotations


class FirmwareBridgeError(Exception):
    """Base class for every error firmware_bridge raises on purpose."""


class BridgeConfigError(FirmwareBridgeError, ValueError):
    """A link configuration value is missing or invalid."""


class LinkError(FirmwareBridgeError, OSError):
    """A serial link could not be opened, read or written."""


class LinkClosedError(LinkError):
    """An operation needs an open link but the link is closed or lost."""


class FrameError(FirmwareBridgeError, ValueError):
    """A received frame or sentence is malformed; the reader counts and skips it."""


class ChecksumError(FrameError):
    """A complete frame failed its checksum or CRC; counted apart from other frame errors."""


class NmeaError(FrameError):
    """An NMEA 0183 sentence is malformed, has a bad checksum or an invalid field."""


class NmeaChecksumError(NmeaError, ChecksumError):
    """An NMEA sentence's checksum does not match its contents."""


class SlcanError(FrameError):
    """An SLCAN (Lawicel) line or a candump log line is malformed."""


class SlcanCommandError(FirmwareBridgeError, RuntimeError):
    """The SLCAN adapter responded to a command with BEL (error)."""


class SlcanTimeoutError(FirmwareBridgeError, TimeoutError):
    """The SLCAN adapter did not respond to a command in time."""


class DbcError(FirmwareBridgeError, ValueError):
    """A DBC file or a signal name in the configuration is invalid."""


class CobsError(FrameError):
    """A COBS-encoded block is malformed."""


class McuFrameError(FrameError):
    """An MCU link frame has a bad CRC, length, version or message type.

    `reason` is one of "cobs", "length", "crc", "version", "type", "payload";
    the C codec reports the same classes of error as MCU_ERR_* codes.
    """

    def __init__(self, message: str, reason: str = "payload") -> None:
        super().__init__(message)
        self.reason = reason


class McuCrcError(McuFrameError, ChecksumError):
    """An MCU link frame's CRC-16 does not match its contents."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "crc")


class McuRejectedError(FirmwareBridgeError, RuntimeError):
    """The MCU acknowledged a message with a status other than accepted."""


class McuAckTimeoutError(FirmwareBridgeError, TimeoutError):
    """The MCU did not acknowledge a message after every retry."""


def check_number(value: object, name: str, *, positive: bool = False, integer: bool = False) -> None:
    """Raise BridgeConfigError unless `value` is a number (not a bool) that is >= 0, or > 0 with `positive`."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (positive and value == 0):
        expected = "positive" if positive else "non-negative"
        kind = "integer" if integer else "number"
        raise BridgeConfigError(f"{name} {value!r} is invalid: give a {expected} {kind}")
