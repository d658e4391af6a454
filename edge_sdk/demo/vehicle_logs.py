"""Synthetic vehicle logs for the demo's vehicle simulator: NMEA GPS, `candump -L` CAN and a DBC.

The drive matches the rendered clip: straight ahead (due north) at the
schedule's speed, with a small steering wobble. The DBC describes a made-up
two-message powertrain bus of this project; it is not any real car's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

# 0x0B4 DEMO_SPEED: bytes 0-1 big-endian vehicle speed, 0.01 km/h per bit.
# 0x025 DEMO_STEERING: bytes 0-1 big-endian signed steering angle, 0.1 deg per bit.
DEMO_DBC = """VERSION ""

NS_ :

BS_:

BU_: DEMO_ECU

BO_ 180 DEMO_SPEED: 8 DEMO_ECU
 SG_ VEHICLE_SPEED : 7|16@0+ (0.01,0) [0|655.35] "km/h" Vector__XXX

BO_ 37 DEMO_STEERING: 8 DEMO_ECU
 SG_ STEER_ANGLE : 7|16@0- (0.1,0) [-3276.8|3276.7] "deg" Vector__XXX
"""

SPEED_MESSAGE_ID = 0x0B4
STEERING_MESSAGE_ID = 0x025
CAN_SIGNALS = {"speed": "DEMO_SPEED.VEHICLE_SPEED", "steering_angle": "DEMO_STEERING.STEER_ANGLE"}
START_LATITUDE = 52.0
START_LONGITUDE = 13.0
METRES_PER_DEGREE_LATITUDE = 111_320.0
KNOTS_PER_MPS = 1.0 / 0.514444


@dataclass(frozen=True, slots=True)
class VehicleLogs:
    """Paths of the generated files."""

    nmea: Path
    candump: Path
    dbc: Path


def nmea_checksum(body: str) -> str:
    """Return the two hex digits of the XOR of every character between '$' and '*'."""
    value = 0
    for char in body:
        value ^= ord(char)
    return f"{value:02X}"


def _sentence(body: str) -> str:
    return f"${body}*{nmea_checksum(body)}\r\n"


def _angle(value: float, degree_digits: int) -> str:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60.0
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}"


def nmea_fix(when: datetime, latitude: float, longitude: float, speed_mps: float) -> str:
    """Return a GGA and an RMC sentence (GP talker) for one fix heading due north."""
    clock = when.strftime("%H%M%S.") + f"{when.microsecond // 10000:02d}"
    lat = f"{_angle(latitude, 2)},{'N' if latitude >= 0 else 'S'}"
    lon = f"{_angle(longitude, 3)},{'E' if longitude >= 0 else 'W'}"
    gga = f"GPGGA,{clock},{lat},{lon},1,09,0.9,48.0,M,44.0,M,,"
    rmc = f"GPRMC,{clock},A,{lat},{lon},{speed_mps * KNOTS_PER_MPS:.2f},0.0,{when.strftime('%d%m%y')},,,A"
    return _sentence(gga) + _sentence(rmc)


def write_nmea(path: Path, seconds: float, speed_mps: float, start: datetime, rate_hz: float = 1.0) -> Path:
    """Write `seconds` of fixes at `rate_hz` along a straight road north."""
    lines = []
    for index in range(int(seconds * rate_hz) + 1):
        t = index / rate_hz
        latitude = START_LATITUDE + speed_mps * t / METRES_PER_DEGREE_LATITUDE
        lines.append(nmea_fix(start + timedelta(seconds=t), latitude, START_LONGITUDE, speed_mps))
    path.write_text("".join(lines), encoding="ascii", newline="")
    return path


def _frame_line(timestamp: float, can_id: int, data: bytes) -> str:
    return f"({timestamp:.6f}) can0 {can_id:03X}#{data.hex().upper()}\n"


def write_candump(path: Path, seconds: float, speed_mps: float, start: datetime, rate_hz: float = 20.0) -> Path:
    """Write `seconds` of speed and steering frames at `rate_hz` each, in `candump -L` form."""
    base = start.timestamp()
    lines = []
    for index in range(int(seconds * rate_hz) + 1):
        t = index / rate_hz
        speed_raw = int(round(speed_mps * 3.6 / 0.01))
        steering_raw = int(round(2.0 * math.sin(2 * math.pi * t / 8.0) / 0.1))
        lines.append(_frame_line(base + t, SPEED_MESSAGE_ID, speed_raw.to_bytes(2, "big") + bytes(6)))
        lines.append(_frame_line(base + t + 0.001, STEERING_MESSAGE_ID, steering_raw.to_bytes(2, "big", signed=True) + bytes(6)))
    path.write_text("".join(lines), encoding="ascii")
    return path


def write_vehicle_logs(folder: str | Path, seconds: float, speed_mps: float, start: datetime | None = None) -> VehicleLogs:
    """Write the NMEA log, the candump log and the DBC into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = start or datetime.now(timezone.utc).replace(microsecond=0)
    dbc = folder / "demo_vehicle.dbc"
    dbc.write_text(DEMO_DBC, encoding="ascii")
    return VehicleLogs(
        nmea=write_nmea(folder / "demo_gps.nmea", seconds, speed_mps, start),
        candump=write_candump(folder / "demo_can.log", seconds, speed_mps, start),
        dbc=dbc,
    )
