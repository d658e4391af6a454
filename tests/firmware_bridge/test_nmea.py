"""NMEA parser: real receiver captures against gpsd's decoded output, strictness rules, fuzzing."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.errors import NmeaChecksumError, NmeaError
from firmware_bridge.gps import FixTracker
from firmware_bridge.nmea import KNOTS_TO_MPS, DopRecord, FixQuality, GpsFix, SatellitesInView, parse_record, parse_sentence

CAPTURES = ["haicom-305N.log", "bu353s4.log", "telit-he910.log"]


def _with_checksum(body: str) -> str:
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    return f"${body}*{checksum:02X}"


def _sentences(path: Path) -> list[str]:
    return [line.rstrip("\n") for line in path.read_text(encoding="ascii").splitlines() if line.startswith("$")]


def _gpsd_pairs(chk_path: Path) -> list[tuple[str, dict]]:
    """Pairs (sentence, TPV report) where gpsd printed a TPV right after that sentence."""
    pairs = []
    previous = None
    for line in chk_path.read_text(encoding="ascii").splitlines():
        if line.startswith("$"):
            previous = line
        elif line.startswith("{") and previous is not None:
            report = json.loads(line)
            if report.get("class") == "TPV":
                pairs.append((previous, report))
    return pairs


@pytest.mark.parametrize("name", CAPTURES)
def test_nmea_capture_parses_without_error(data_dir: Path, name: str) -> None:
    sentences = _sentences(data_dir / "nmea" / name)
    records = [parse_record(sentence + "\r\n") for sentence in sentences]
    assert len(records) == len(sentences)
    assert all(record is not None for record in records)


@pytest.mark.parametrize("name", CAPTURES)
def test_nmea_capture_matches_gpsd(data_dir: Path, name: str) -> None:
    pairs = _gpsd_pairs(data_dir / "nmea" / (name + ".chk"))
    compared_positions = compared_speeds = compared_states = 0
    for sentence, report in pairs:
        record = parse_record(sentence)
        if not isinstance(record, GpsFix) or record.sentence_type not in ("GGA", "RMC", "GLL"):
            continue
        assert record.has_fix == (report["mode"] >= 2), (sentence, report)
        compared_states += 1
        if record.has_fix and "lat" in report:
            assert record.latitude == pytest.approx(report["lat"], abs=1e-8), sentence
            assert record.longitude == pytest.approx(report["lon"], abs=1e-8), sentence
            compared_positions += 1
        if record.sentence_type == "RMC" and record.has_fix and "speed" in report:
            # gpsd prints speed in m/s with three decimals.
            assert record.speed_mps == pytest.approx(report["speed"], abs=6e-4), sentence
            compared_speeds += 1
    assert compared_states > 20
    assert compared_positions > 20
    assert compared_speeds > 20


def test_telit_cold_start_gives_no_fix_records(data_dir: Path) -> None:
    sentences = _sentences(data_dir / "nmea" / "telit-he910.log")
    first_fix = next(i for i, s in enumerate(sentences) if (r := parse_record(s)) is not None and getattr(r, "has_fix", False))
    cold = [parse_record(sentence) for sentence in sentences[:first_fix]]
    fixes = [record for record in cold if isinstance(record, GpsFix)]
    assert len(fixes) > 50
    for record in fixes:
        assert record.has_fix is False
        assert record.latitude is None
        assert record.longitude is None
        assert record.speed_mps is None
    tracker = FixTracker()
    for record in cold:
        tracker.update(record)
    snapshot = tracker.snapshot()
    assert snapshot is not None
    assert snapshot["has_fix"] is False
    assert "latitude" not in snapshot


def test_nmea_checksum_accepts_either_hex_case() -> None:
    upper = "$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D"
    lower = upper[:-2] + "7d"
    assert parse_record(upper) == parse_record(lower)


def test_nmea_rejects_missing_and_wrong_checksum() -> None:
    body = "GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000"
    with pytest.raises(NmeaError, match="no '\\*hh' checksum"):
        parse_sentence("$" + body)
    assert parse_sentence("$" + body, require_checksum=False).sentence_type == "GGA"
    with pytest.raises(NmeaChecksumError):
        parse_sentence("$" + body + "*7C")


def test_nmea_rejects_other_terminators_and_long_lines() -> None:
    sentence = _with_checksum("GPVTG,0.00,T,,,0.00,N,0.00,K,A")
    assert parse_sentence(sentence + "\r\n").sentence_type == "VTG"
    for ending in ("\n", "\r", "\n\r", "\r\n\r\n"):
        with pytest.raises(NmeaError):
            parse_sentence(sentence + ending)
    with pytest.raises(NmeaError, match="at most 82"):
        parse_sentence(_with_checksum("GPTXT," + "A" * 80))


def test_nmea_empty_fields_become_none() -> None:
    record = parse_record(_with_checksum("GNGGA,123519,4807.038,N,01131.000,E,1,08,,,M,,M,,"))
    assert isinstance(record, GpsFix)
    assert record.talker == "GN"
    assert record.hdop is None
    assert record.altitude_m is None
    assert record.latitude == pytest.approx(48.1173)
    assert record.time == datetime.time(12, 35, 19, tzinfo=datetime.timezone.utc)


def test_nmea_time_with_fraction() -> None:
    record = parse_record(_with_checksum("GLRMC,081836.25,A,3751.65,S,14507.36,E,10.0,360.0,130998,011.3,E,A"))
    assert isinstance(record, GpsFix)
    assert record.time == datetime.time(8, 18, 36, 250000, tzinfo=datetime.timezone.utc)
    assert record.date == datetime.date(1998, 9, 13)
    assert record.speed_mps == pytest.approx(10.0 * KNOTS_TO_MPS)
    assert record.longitude == pytest.approx(145.1226666)


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,081836,V,3751.65,S,14507.36,E,0.0,360.0,130998,,,A",
        "GPRMC,081836,A,3751.65,S,14507.36,E,0.0,360.0,130998,,,N",
        "GPGGA,123519,4807.038,N,01131.000,E,0,08,0.9,545.4,M,46.9,M,,",
        "GPGLL,4916.45,N,12311.12,W,225444,V,N",
        "GPGGA,123519,,,,,1,08,0.9,545.4,M,46.9,M,,",
    ],
)
def test_nmea_no_fix_never_reports_a_position(body: str) -> None:
    record = parse_record(_with_checksum(body))
    assert isinstance(record, GpsFix)
    assert record.has_fix is False
    assert record.latitude is None
    assert record.longitude is None


def test_nmea_other_sentences_are_valid_but_unsupported() -> None:
    proprietary = parse_sentence(_with_checksum("PUBX,00,081350.00,4717.113210,N"))
    assert proprietary.talker == "P"
    assert proprietary.sentence_type == "UBX"
    assert parse_record(_with_checksum("PSRF103,00,01,00,01")) is None
    assert parse_record(_with_checksum("GPTXT,01,01,02,ANTSTATUS=OK")) is None


def test_nmea_gsa_and_gsv_records() -> None:
    gsa = parse_record(_with_checksum("GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1"))
    assert isinstance(gsa, DopRecord)
    assert gsa.satellite_ids == (4, 5, 9, 12, 24)
    assert gsa.hdop == 1.3
    gsv = parse_record(_with_checksum("GPGSV,2,1,08,01,40,083,46,02,17,308,,12,07,344,39,14,22,228,45"))
    assert isinstance(gsv, SatellitesInView)
    assert [sat.prn for sat in gsv.satellites] == [1, 2, 12, 14]
    assert gsv.satellites[1].snr_db is None


@pytest.mark.parametrize(
    "body, rule",
    [
        ("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "hemisphere"),
        ("GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "minutes"),
        ("GPGGA,253519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "out of range"),
        ("GPGGA,123519,4807.038,N,01131.000,E,9,08,0.9,545.4,M,46.9,M,,", "fix quality"),
        ("GPGGA,123519,4807.038,N,01131.000,E,1,08,nan,545.4,M,46.9,M,,", "HDOP"),
        ("GPRMC,081836,A,3751.65,S,14507.36,E,1_0,360.0,130998,,,A", "speed"),
        ("GPRMC,081836,A,3751.65,S,14507.36,E,1.0,360.0,310298,,,A", "calendar"),
        ("GPGGA,123519,4807.038,N", "fields"),
    ],
)
def test_nmea_invalid_field_names_the_rule(body: str, rule: str) -> None:
    with pytest.raises(NmeaError, match=rule):
        parse_record(_with_checksum(body))


def test_nmea_fix_quality_is_typed() -> None:
    record = parse_record(_with_checksum("GPGGA,123519,4807.038,N,01131.000,E,2,08,0.9,545.4,M,46.9,M,,"))
    assert isinstance(record, GpsFix)
    assert record.fix_quality is FixQuality.DGPS


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=100))
def test_nmea_fuzzed_bytes_raise_nmea_error(data: bytes) -> None:
    try:
        parse_record(data)
    except NmeaError:
        pass


_FIELD = st.text(alphabet="0123456789.,-NSEWAVMTKn ", max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["GPGGA", "GNRMC", "GPGLL", "GPVTG", "GPGSA", "GLGSV"]), st.lists(_FIELD, max_size=20))
def test_nmea_fuzzed_fields_raise_nmea_error(address: str, fields: list[str]) -> None:
    try:
        parse_record(_with_checksum(",".join([address, *fields])))
    except NmeaError:
        pass
