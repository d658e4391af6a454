"""Strict NMEA 0183 parser for GPS receivers: GGA, RMC, GLL, VTG, GSA and GSV.

Written here instead of using pynmea2, because pynmea2 1.19 accepts sentences
without a checksum by default, keeps empty fields as "" and coordinates as
strings, and does not validate field ranges. `tools/bench_firmware.py`
measures both parsers on the same sentences. Rules enforced:

- framing `$` + 5-character address + fields + `*hh`, optional CR LF and no
  other terminator, at most 82 characters including `$` and CR LF, printable
  ASCII only;
- the checksum (either hex case) must match; sentences without one are
  rejected unless `require_checksum=False`;
- empty fields become None, never 0; numbers must be plain decimals;
- a record with RMC/GLL status V, mode indicator N, GGA quality 0 (or 0
  satellites used), GSA mode 1 or an empty position is a "no fix" record: its position, altitude, speed and course are
  None, whatever the receiver left in those fields.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from collections.abc import Callable

from firmware_bridge.errors import NmeaChecksumError, NmeaError

MAX_SENTENCE_LENGTH = 82
KNOTS_TO_MPS = 1852.0 / 3600.0
KMH_TO_MPS = 1.0 / 3.6
SUPPORTED_TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})

_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)\Z")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}\Z")
_ADDRESS = re.compile(r"[A-Z][A-Z0-9][A-Z]{3}\Z")
# Proprietary sentences: "P", a manufacturer code and the manufacturer's type (PUBX, PSRF103, PGRME).
_PROPRIETARY_ADDRESS = re.compile(r"P[A-Z0-9]{3,9}\Z")
_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(?:\.(\d{1,6}))?\Z")
_DATE = re.compile(r"(\d\d)(\d\d)(\d\d)\Z")
_LATITUDE = re.compile(r"(\d\d)(\d\d(?:\.\d+)?)\Z")
_LONGITUDE = re.compile(r"(\d\d\d)(\d\d(?:\.\d+)?)\Z")


class FixQuality(enum.IntEnum):
    """GGA fix quality indicator."""

    INVALID = 0
    GPS = 1
    DGPS = 2
    PPS = 3
    RTK = 4
    FLOAT_RTK = 5
    ESTIMATED = 6
    MANUAL = 7
    SIMULATION = 8


# Indexed by the GGA quality digit; an enum call per sentence costs more than the lookup.
_FIX_QUALITIES = tuple(FixQuality)


@dataclasses.dataclass(frozen=True, slots=True)
class NmeaSentence:
    """A sentence whose framing and checksum are valid; fields are still text.

    Proprietary sentences have talker "P" and the rest of the address (manufacturer and type) as `sentence_type`.
    """

    talker: str
    sentence_type: str
    fields: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class GpsFix:
    """Position, velocity and quality reported by one GGA, RMC, GLL or VTG sentence.

    Units: degrees (WGS84, south and west negative), metres above mean sea
    level, metres per second, degrees true. A field the sentence does not
    carry or left empty is None; every position field is None when
    `has_fix` is False.
    """

    talker: str
    sentence_type: str
    has_fix: bool
    time: datetime.time | None = None
    date: datetime.date | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    fix_quality: FixQuality | None = None
    satellites_used: int | None = None
    hdop: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DopRecord:
    """GSA: fix mode (1 none, 2 2D, 3 3D), satellites used and dilution of precision."""

    talker: str
    has_fix: bool
    selection_mode: str
    fix_mode: int
    satellite_ids: tuple[int, ...]
    pdop: float | None
    hdop: float | None
    vdop: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class SatelliteInfo:
    """One satellite of a GSV sentence; elevation and azimuth in degrees, SNR in dB-Hz."""

    prn: int
    elevation_deg: int | None
    azimuth_deg: int | None
    snr_db: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class SatellitesInView:
    """GSV: one message of a group listing the satellites in view."""

    talker: str
    message_count: int
    message_number: int
    satellites_in_view: int
    satellites: tuple[SatelliteInfo, ...]


NmeaRecord = GpsFix | DopRecord | SatellitesInView


def parse_sentence(line: bytes | str, *, require_checksum: bool = True) -> NmeaSentence:
    """Check framing and checksum of one sentence and split its fields.

    `line` may end with CR LF; any other trailing bytes are an error.
    Raises NmeaChecksumError on a checksum mismatch and NmeaError on any other violation.
    """
    text = _decode(line)
    body_end = len(text) - 2 if text.endswith("\r\n") else len(text)
    if body_end + 2 > MAX_SENTENCE_LENGTH:
        raise NmeaError(f"sentence {text[:40]!r}... is {body_end + 2} characters with CR LF: NMEA 0183 allows at most {MAX_SENTENCE_LENGTH}")
    if not text.startswith("$"):
        raise NmeaError(f"sentence {text[:20]!r} does not start with '$'")
    star = text.find("*", 1, body_end)
    if star < 0:
        if require_checksum:
            raise NmeaError(f"sentence {text[:body_end]!r} has no '*hh' checksum: pass require_checksum=False to accept such receivers")
        payload = text[1:body_end]
    else:
        payload = text[1:star]
        _check_checksum(text, payload, text[star + 1 : body_end])
    if any(ch in payload for ch in "$*!\r\n"):
        raise NmeaError(f"sentence {text[:body_end]!r} contains a reserved character ($, *, ! or a line break) inside its fields")
    address, separator, rest = payload.partition(",")
    fields = tuple(rest.split(",")) if separator else ()
    if _ADDRESS.match(address):
        return NmeaSentence(address[:2], address[2:], fields)
    if _PROPRIETARY_ADDRESS.match(address):
        return NmeaSentence("P", address[1:], fields)
    raise NmeaError(f"address field {address!r} is invalid: expected a 2-letter talker and a 3-letter sentence type such as GPGGA")


def parse_record(line: bytes | str, *, require_checksum: bool = True) -> NmeaRecord | None:
    """Parse one sentence into a typed record; return None for valid sentences of other types."""
    sentence = parse_sentence(line, require_checksum=require_checksum)
    parser = _PARSERS.get(sentence.sentence_type)
    if parser is None or sentence.talker not in SUPPORTED_TALKERS:
        return None
    try:
        return parser(sentence)
    except NmeaError as exc:
        raise NmeaError(f"{sentence.talker}{sentence.sentence_type} sentence rejected: {exc}") from None


def _decode(line: bytes | str) -> str:
    if isinstance(line, bytes | bytearray):
        if not line.isascii():
            raise NmeaError(f"sentence {bytes(line[:40])!r} contains a byte outside ASCII")
        text = line.decode("ascii")
    else:
        text = line
    stripped = text.rstrip("\r\n")
    if not stripped.isascii() or not stripped.isprintable():
        raise NmeaError(f"sentence {stripped[:40]!r} contains a character outside printable ASCII")
    if text[len(stripped):] not in ("", "\r\n"):
        raise NmeaError(f"sentence {stripped[:40]!r} ends with {text[len(stripped):]!r}: NMEA 0183 sentences end with CR LF")
    return text


def _check_checksum(text: str, payload: str, given: str) -> None:
    if len(given) != 2 or not _HEX_PAIR.match(given):
        raise NmeaError(f"checksum field {given!r} of {text.strip()!r} is invalid: expected two hex digits after '*'")
    computed = xor_checksum(payload.encode("ascii", errors="replace"))
    if computed != int(given, 16):
        raise NmeaChecksumError(f"checksum of {text.strip()!r} is {given.upper()} but the computed checksum is {computed:02X}")


def xor_checksum(data: bytes) -> int:
    """XOR of all bytes of `data`, the NMEA 0183 checksum of the text between `$` and `*`."""
    # Fold the bytes as one integer in halves: a few big-integer operations
    # instead of one Python step per character.
    value = int.from_bytes(data, "little")
    width = len(data)
    while width > 1:
        half = (width + 1) // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        width = half
    return value


def _fields(sentence: NmeaSentence, counts: tuple[int, ...]) -> tuple[str, ...]:
    if len(sentence.fields) not in counts:
        expected = " or ".join(str(count) for count in counts)
        raise NmeaError(f"{len(sentence.fields)} fields, expected {expected}")
    return sentence.fields


def _number(text: str, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
    if text == "":
        return None
    if not _NUMBER.match(text):
        raise NmeaError(f"{name} {text!r} is not a decimal number")
    value = float(text)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise NmeaError(f"{name} {text!r} is outside {minimum}..{maximum}")
    return value


def _integer(text: str, name: str, minimum: int, maximum: int) -> int | None:
    if text == "":
        return None
    if not text.isdigit() or not text.isascii():
        raise NmeaError(f"{name} {text!r} is not an unsigned integer")
    value = int(text)
    if not minimum <= value <= maximum:
        raise NmeaError(f"{name} {text!r} is outside {minimum}..{maximum}")
    return value


def _time(text: str) -> datetime.time | None:
    if text == "":
        return None
    match = _TIME.match(text)
    if match is None:
        raise NmeaError(f"UTC time {text!r} is invalid: expected hhmmss or hhmmss.sss")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3])
    fraction = match[4] or ""
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    # NOTE: a leap second (ss = 60) is rejected because datetime.time cannot hold it.
    if hours > 23 or minutes > 59 or seconds > 59:
        raise NmeaError(f"UTC time {text!r} is out of range")
    return datetime.time(hours, minutes, seconds, micros, tzinfo=datetime.timezone.utc)


def _date(text: str) -> datetime.date | None:
    if text == "":
        return None
    match = _DATE.match(text)
    if match is None:
        raise NmeaError(f"date {text!r} is invalid: expected ddmmyy")
    year = int(match[3])
    # Two-digit years: 80..99 are 1980..1999 (GPS started in 1980), the rest 2000..2079.
    year += 1900 if year >= 80 else 2000
    try:
        return datetime.date(year, int(match[2]), int(match[1]))
    except ValueError as exc:
        raise NmeaError(f"date {text!r} is not a calendar date: {exc}") from None


def _coordinate(value: str, hemisphere: str, *, latitude: bool) -> float | None:
    name, pattern, limit, signs = ("latitude", _LATITUDE, 90.0, "NS") if latitude else ("longitude", _LONGITUDE, 180.0, "EW")
    if value == "" and hemisphere == "":
        return None
    if value == "" or hemisphere == "":
        raise NmeaError(f"{name} {value!r} with hemisphere {hemisphere!r}: both must be given or both empty")
    if hemisphere not in signs:
        raise NmeaError(f"{name} hemisphere {hemisphere!r} is invalid: expected {signs[0]} or {signs[1]}")
    match = pattern.match(value)
    if match is None:
        raise NmeaError(f"{name} {value!r} is invalid: expected {'ddmm.mmmm' if latitude else 'dddmm.mmmm'}")
    minutes = float(match[2])
    if minutes >= 60.0:
        raise NmeaError(f"{name} {value!r} has {minutes} minutes: minutes must be below 60")
    degrees = int(match[1]) + minutes / 60.0
    if degrees > limit:
        raise NmeaError(f"{name} {value!r} is beyond {limit} degrees")
    return -degrees if hemisphere == signs[1] else degrees


def _choice(text: str, name: str, allowed: str) -> str:
    if len(text) > 1 or text not in allowed:
        raise NmeaError(f"{name} {text!r} is invalid: expected one of {', '.join(repr(c) for c in allowed) or 'nothing'}")
    return text


def _unit(text: str, expected: str, name: str) -> None:
    if text not in (expected, ""):
        raise NmeaError(f"{name} unit {text!r} is invalid: expected {expected!r}")


def _no_fix(talker: str, sentence_type: str, **kwargs: object) -> GpsFix:
    carried = {key: value for key, value in kwargs.items() if key in ("time", "date", "fix_quality", "satellites_used", "hdop")}
    return GpsFix(talker, sentence_type, False, **carried)  # type: ignore[arg-type]


_MODES = "ADEFMNPRS"


def _parse_gga(sentence: NmeaSentence) -> GpsFix:
    f = _fields(sentence, (14,))
    quality_number = _integer(f[5], "fix quality", 0, 8)
    quality = _FIX_QUALITIES[quality_number] if quality_number is not None else None
    values = dict(
        time=_time(f[0]),
        latitude=_coordinate(f[1], f[2], latitude=True),
        longitude=_coordinate(f[3], f[4], latitude=False),
        fix_quality=quality,
        satellites_used=_integer(f[6], "satellites used", 0, 99),
        hdop=_number(f[7], "HDOP", minimum=0.0),
        altitude_m=_number(f[8], "altitude"),
    )
    _unit(f[9], "M", "altitude")
    _number(f[10], "geoid separation")
    _number(f[12], "DGPS age", minimum=0.0)
    # Quality > 0 with zero satellites used comes from SiRF-II receivers still
    # acquiring (the Haicom HI-305N capture); gpsd reports no fix there too.
    no_satellites = values["satellites_used"] == 0
    if not quality or no_satellites or values["latitude"] is None or values["longitude"] is None:
        return _no_fix(sentence.talker, "GGA", **values)
    return GpsFix(sentence.talker, "GGA", True, **values)  # type: ignore[arg-type]


def _parse_rmc(sentence: NmeaSentence) -> GpsFix:
    f = _fields(sentence, (11, 12, 13))
    status = _choice(f[1], "status", "AV")
    mode = _choice(f[11], "mode indicator", _MODES + "") if len(f) > 11 else ""
    speed_knots = _number(f[6], "speed over ground", minimum=0.0)
    values = dict(
        time=_time(f[0]),
        latitude=_coordinate(f[2], f[3], latitude=True),
        longitude=_coordinate(f[4], f[5], latitude=False),
        speed_mps=None if speed_knots is None else speed_knots * KNOTS_TO_MPS,
        course_deg=_number(f[7], "course over ground", minimum=0.0, maximum=360.0),
        date=_date(f[8]),
    )
    _number(f[9], "magnetic variation", minimum=0.0, maximum=180.0)
    _choice(f[10], "magnetic variation direction", "EW")
    if status != "A" or mode == "N" or values["latitude"] is None or values["longitude"] is None:
        return _no_fix(sentence.talker, "RMC", **values)
    return GpsFix(sentence.talker, "RMC", True, **values)  # type: ignore[arg-type]


def _parse_gll(sentence: NmeaSentence) -> GpsFix:
    f = _fields(sentence, (6, 7))
    values = dict(
        latitude=_coordinate(f[0], f[1], latitude=True),
        longitude=_coordinate(f[2], f[3], latitude=False),
        time=_time(f[4]),
    )
    status = _choice(f[5], "status", "AV")
    mode = _choice(f[6], "mode indicator", _MODES) if len(f) > 6 else ""
    if status != "A" or mode == "N" or values["latitude"] is None or values["longitude"] is None:
        return _no_fix(sentence.talker, "GLL", **values)
    return GpsFix(sentence.talker, "GLL", True, **values)  # type: ignore[arg-type]


def _parse_vtg(sentence: NmeaSentence) -> GpsFix:
    f = _fields(sentence, (8, 9))
    course = _number(f[0], "course over ground", minimum=0.0, maximum=360.0)
    _unit(f[1], "T", "course")
    _number(f[2], "magnetic course", minimum=0.0, maximum=360.0)
    _unit(f[3], "M", "magnetic course")
    knots = _number(f[4], "speed over ground", minimum=0.0)
    _unit(f[5], "N", "speed")
    kmh = _number(f[6], "speed over ground", minimum=0.0)
    _unit(f[7], "K", "speed")
    mode = _choice(f[8], "mode indicator", _MODES) if len(f) > 8 else ""
    if knots is not None:
        speed = knots * KNOTS_TO_MPS
    elif kmh is not None:
        speed = kmh * KMH_TO_MPS
    else:
        speed = None
    if mode == "N" or speed is None:
        return GpsFix(sentence.talker, "VTG", False)
    return GpsFix(sentence.talker, "VTG", True, speed_mps=speed, course_deg=course)


def _parse_gsa(sentence: NmeaSentence) -> DopRecord:
    f = _fields(sentence, (17, 18))
    selection = _choice(f[0], "selection mode", "AM")
    fix_mode = _integer(f[1], "fix mode", 1, 3)
    ids = tuple(value for value in (_integer(text, "satellite id", 1, 999) for text in f[2:14]) if value is not None)
    if len(f) > 17:
        _integer(f[17], "system id", 0, 15)
    return DopRecord(
        talker=sentence.talker,
        has_fix=(fix_mode or 1) >= 2,
        selection_mode=selection,
        fix_mode=fix_mode or 1,
        satellite_ids=ids,
        pdop=_number(f[14], "PDOP", minimum=0.0),
        hdop=_number(f[15], "HDOP", minimum=0.0),
        vdop=_number(f[16], "VDOP", minimum=0.0),
    )


def _parse_gsv(sentence: NmeaSentence) -> SatellitesInView:
    f = sentence.fields
    if len(f) < 3 or (len(f) - 3) % 4 not in (0, 1) or len(f) > 3 + 4 * 4 + 1:
        raise NmeaError(f"{len(f)} fields, expected 3 plus up to four groups of 4, plus an optional signal id")
    count = _integer(f[0], "message count", 1, 9)
    number = _integer(f[1], "message number", 1, 9)
    in_view = _integer(f[2], "satellites in view", 0, 99)
    if count is None or number is None or in_view is None or number > count:
        raise NmeaError(f"message {f[1]!r} of {f[0]!r} with {f[2]!r} satellites in view is inconsistent")
    satellites = []
    for start in range(3, len(f) - 3, 4):
        prn_text, elevation, azimuth, snr = f[start : start + 4]
        if prn_text == "":
            if elevation or azimuth or snr:
                raise NmeaError(f"satellite group at field {start} has data but no satellite id")
            continue
        satellites.append(
            SatelliteInfo(
                prn=_integer(prn_text, "satellite id", 1, 999) or 0,
                elevation_deg=_integer(elevation, "elevation", 0, 90),
                azimuth_deg=_integer(azimuth, "azimuth", 0, 359),
                snr_db=_integer(snr, "SNR", 0, 99),
            )
        )
    return SatellitesInView(sentence.talker, count, number, in_view, tuple(satellites))


_PARSERS: dict[str, Callable[[NmeaSentence], NmeaRecord]] = {
    "GGA": _parse_gga,
    "RMC": _parse_rmc,
    "GLL": _parse_gll,
    "VTG": _parse_vtg,
    "GSA": _parse_gsa,
    "GSV": _parse_gsv,
}
