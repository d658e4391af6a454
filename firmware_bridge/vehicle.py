"""All vehicle links of one daemon: GPS, SLCAN CAN adapter with DBC signals, and the MCU.

Configuration (a dict, e.g. the `vehicle` table of the daemon's config file);
every section is optional and every link key not listed keeps its default:

    gps:  url, baudrate (9600), require_checksum (true)
    can:  url, baudrate (115200), bitrate (500000), listen_only (true),
          command_timeout_s (1.0), dbc (path), signals {name: "MSG.SIGNAL" or [...]},
          speed_signal (name of a configured signal giving vehicle speed)
    mcu:  url, baudrate (115200), ack_timeout_s (0.2), retries (3), heartbeat_interval_s (1.0)
    each link also takes: exclusive (true), read_timeout_s (0.05),
          reconnect_initial_s (0.2), reconnect_max_s (5.0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from firmware_bridge.dbc import DbcDecoder
from firmware_bridge.errors import BridgeConfigError, DbcError, LinkClosedError
from firmware_bridge.gps import GpsLink
from firmware_bridge.link import LinkSettings, SerialLink
from firmware_bridge.mcu import McuLink, McuSettings
from firmware_bridge.mcu_protocol import AlertKind, AlertSeverity, DriverAlert, McuMessage, VehicleState
from firmware_bridge.slcan import SlcanFrame, SlcanLink, SlcanSettings

logger = logging.getLogger(__name__)

_LINK_KEYS = {"url", "baudrate", "exclusive", "read_timeout_s", "reconnect_initial_s", "reconnect_max_s"}
_SECTION_KEYS = {
    "gps": _LINK_KEYS | {"require_checksum"},
    "can": _LINK_KEYS | {"bitrate", "listen_only", "command_timeout_s", "dbc", "signals", "speed_signal"},
    "mcu": _LINK_KEYS | {"ack_timeout_s", "retries", "heartbeat_interval_s"},
}
_DEFAULT_BAUDRATES = {"gps": 9600, "can": 115200, "mcu": 115200}
# Factors from a DBC unit to metres per second.
_SPEED_UNITS = {"km/h": 1.0 / 3.6, "kph": 1.0 / 3.6, "m/s": 1.0, "mph": 0.44704}


def _link_settings(section: str, config: Mapping[str, Any]) -> LinkSettings:
    if not isinstance(config, Mapping):
        raise BridgeConfigError(f"vehicle.{section} {config!r} is invalid: give a table of keys such as url and baudrate")
    unknown = set(config) - _SECTION_KEYS[section]
    if unknown:
        raise BridgeConfigError(f"vehicle.{section} has unknown key(s) {sorted(unknown)}: allowed keys are {sorted(_SECTION_KEYS[section])}")
    if "url" not in config:
        raise BridgeConfigError(f"vehicle.{section}.url is missing: give the device path or pyserial URL of the {section} link")
    values = {key: config[key] for key in _LINK_KEYS if key in config}
    values.setdefault("baudrate", _DEFAULT_BAUDRATES[section])
    try:
        return LinkSettings(**values)
    except TypeError as exc:
        raise BridgeConfigError(f"vehicle.{section} is invalid: {exc}") from exc


class VehicleLinks:
    """Owns the configured links and keeps the latest vehicle state for the daemon."""

    def __init__(self, gps: GpsLink | None, can: SlcanLink | None, decoder: DbcDecoder | None,
                 mcu: McuLink | None, *, speed_signal: str | None = None) -> None:
        self.gps = gps
        self.can = can
        self.decoder = decoder
        self.mcu = mcu
        self._speed_signal = speed_signal
        self._lock = threading.Lock()
        self._vehicle_state: tuple[VehicleState, float] | None = None
        if can is not None and decoder is not None:
            can.on_frame = self._on_can_frame
        if mcu is not None:
            mcu.on_message = self._on_mcu_message

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VehicleLinks:
        """Build the links named in `config` (see the module docstring); nothing is opened yet."""
        unknown = set(config) - set(_SECTION_KEYS)
        if unknown:
            raise BridgeConfigError(f"vehicle config has unknown section(s) {sorted(unknown)}: use gps, can and mcu")
        gps = can = mcu = None
        decoder = None
        speed_signal = None
        if config.get("gps") is not None:
            section = config["gps"]
            settings = _link_settings("gps", section)
            require_checksum = section.get("require_checksum", True)
            if not isinstance(require_checksum, bool):
                raise BridgeConfigError(f"vehicle.gps.require_checksum {require_checksum!r} is invalid: give true or false")
            gps = GpsLink("gps", settings, require_checksum=require_checksum)
        if config.get("can") is not None:
            section = config["can"]
            settings = _link_settings("can", section)
            can_settings = SlcanSettings(
                bitrate=section.get("bitrate", 500000),
                listen_only=section.get("listen_only", True),
                command_timeout_s=section.get("command_timeout_s", 1.0),
            )
            can = SlcanLink("can", settings, can_settings)
            decoder, speed_signal = cls._make_decoder(section)
        if config.get("mcu") is not None:
            section = config["mcu"]
            settings = _link_settings("mcu", section)
            mcu_settings = McuSettings(
                ack_timeout_s=section.get("ack_timeout_s", 0.2),
                retries=section.get("retries", 3),
                heartbeat_interval_s=section.get("heartbeat_interval_s", 1.0),
            )
            mcu = McuLink("mcu", settings, mcu_settings)
        return cls(gps, can, decoder, mcu, speed_signal=speed_signal)

    @staticmethod
    def _make_decoder(section: Mapping[str, Any]) -> tuple[DbcDecoder | None, str | None]:
        signals = section.get("signals") or {}
        speed_signal = section.get("speed_signal")
        if not signals:
            if speed_signal:
                raise BridgeConfigError(f"vehicle.can.speed_signal {speed_signal!r} needs vehicle.can.signals and vehicle.can.dbc")
            return None, None
        if "dbc" not in section:
            raise BridgeConfigError("vehicle.can.signals is set but vehicle.can.dbc is missing: give the DBC file of the bus")
        if speed_signal is not None and speed_signal not in signals:
            raise BridgeConfigError(f"vehicle.can.speed_signal {speed_signal!r} is not one of the configured signals {sorted(signals)}")
        return DbcDecoder(section["dbc"], signals, clock=time.monotonic), speed_signal

    @property
    def links(self) -> list[SerialLink]:
        return [link for link in (self.gps, self.can, self.mcu) if link is not None]

    def start(self) -> None:
        """Start every link's reader thread; links open and reopen in the background."""
        for link in self.links:
            link.start()

    def stop(self) -> None:
        """Stop every link; safe to call twice."""
        for link in self.links:
            link.stop()

    def __enter__(self) -> VehicleLinks:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _on_can_frame(self, frame: SlcanFrame) -> None:
        assert self.decoder is not None
        try:
            self.decoder.process(frame.message)
        except DbcError as exc:
            # Counted in decoder.decode_errors; log the 1st, 2nd, 4th... so a bad frame cannot flood the log.
            count = self.decoder.decode_errors
            if count & (count - 1) == 0:
                logger.warning("CAN frame skipped (%d decode errors so far): %s", count, exc)

    def _on_mcu_message(self, message: McuMessage) -> None:
        if isinstance(message, VehicleState):
            with self._lock:
                self._vehicle_state = (message, time.monotonic())

    def snapshot(self) -> dict[str, Any]:
        """Return the latest vehicle state; every part carries `age_s`, seconds since it was received.

        Keys: `gps` (merged fix or None), `can` ({signal: {value, unit, age_s}}),
        `mcu` (last vehicle state or None) and `speed` ({value_mps, source, age_s} or
        None), taken from the CAN speed signal, else the MCU, else the GPS fix.
        """
        now = time.monotonic()
        gps = self.gps.tracker.snapshot() if self.gps is not None else None
        can_values = self.decoder.latest() if self.decoder is not None else {}
        can = {name: {"value": value.value, "unit": value.unit, "age_s": now - value.received_at} for name, value in can_values.items()}
        with self._lock:
            state = self._vehicle_state
        mcu = None
        if state is not None:
            message, received_at = state
            mcu = {
                "speed_kmh": message.speed_kmh,
                "steering_angle_deg": message.steering_angle_deg,
                "gear": message.gear.name.lower(),
                "left_indicator": message.left_indicator,
                "right_indicator": message.right_indicator,
                "hazard": message.hazard,
                "age_s": now - received_at,
            }
        return {"gps": gps, "can": can, "mcu": mcu, "speed": self._speed(gps, can_values, mcu, now)}

    def _speed(self, gps: dict[str, Any] | None, can_values: dict[str, Any], mcu: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
        if self._speed_signal is not None and self._speed_signal in can_values:
            value = can_values[self._speed_signal]
            factor = _SPEED_UNITS.get((value.unit or "").lower())
            if factor is not None:
                return {"value_mps": value.value * factor, "source": "can", "age_s": now - value.received_at}
            logger.debug("CAN speed signal %s has unit %r with no conversion to m/s", self._speed_signal, value.unit)
        if mcu is not None and mcu["speed_kmh"] is not None:
            return {"value_mps": mcu["speed_kmh"] / 3.6, "source": "mcu", "age_s": mcu["age_s"]}
        if gps is not None and gps.get("speed_mps") is not None:
            return {"value_mps": gps["speed_mps"], "source": "gps", "age_s": gps["age_s"]}
        return None

    def send_alert(self, kind: str | int, severity: str | int, text_id: int) -> None:
        """Send a driver alert to the MCU and wait for its ACK.

        `kind` and `severity` are AlertKind / AlertSeverity names (any case) or
        numbers. Raises BridgeConfigError for an unknown kind, severity or
        text id, LinkClosedError when no MCU link is configured or open,
        McuAckTimeoutError when the MCU does not acknowledge, and
        McuRejectedError when it acknowledges with an error status.
        """
        if self.mcu is None:
            raise LinkClosedError(f"no MCU link is configured: add a vehicle.mcu section to send alert {kind!r}")
        alert = DriverAlert(_enum_value(AlertKind, kind, "alert kind"), _enum_value(AlertSeverity, severity, "alert severity"), _text_id(text_id))
        self.mcu.send(alert, require_ack=True)

    def status(self) -> dict[str, Any]:
        """Return each link's state and counters, keyed gps, can and mcu (absent links are omitted)."""
        status: dict[str, Any] = {link.name: link.status() for link in self.links}
        if self.decoder is not None and "can" in status:
            status["can"]["decode_errors"] = self.decoder.decode_errors
        return status


def _enum_value(enum_type: Any, value: str | int, what: str) -> Any:
    try:
        if isinstance(value, str):
            return enum_type[value.upper()]
        return enum_type(value)
    except (KeyError, ValueError):
        names = ", ".join(member.name.lower() for member in enum_type)
        raise BridgeConfigError(f"{what} {value!r} is unknown: use one of {names}") from None


def _text_id(text_id: int) -> int:
    if not isinstance(text_id, int) or not 0 <= text_id <= 0xFFFF:
        raise BridgeConfigError(f"alert text id {text_id!r} is invalid: give an integer 0..65535 from the MCU's message table")
    return text_id
