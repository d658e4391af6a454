"""The demo's synthetic vehicle logs parse with firmware_bridge's own strict parsers."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from edge_sdk.demo.vehicle_logs import CAN_SIGNALS, nmea_checksum, write_vehicle_logs
from firmware_bridge.candump import read_candump_log
from firmware_bridge.dbc import DbcDecoder
from firmware_bridge.nmea import parse_record

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def logs(tmp_path):
    return write_vehicle_logs(tmp_path, seconds=10.0, speed_mps=12.0, start=START)


def test_nmea_fixes_parse_with_speed(logs):
    fixes = [parse_record(line) for line in logs.nmea.read_bytes().splitlines(keepends=True)]
    assert len(fixes) == 22
    rmc = [fix for fix in fixes if fix is not None and fix.sentence_type == "RMC"]
    assert len(rmc) == 11
    assert all(fix.has_fix for fix in rmc)
    assert rmc[0].speed_mps == pytest.approx(12.0, abs=0.01)
    assert rmc[-1].latitude > rmc[0].latitude


def test_nmea_checksum_known_sentence():
    # The XOR of the characters of "GPGLL,,,,,,V,N" is 0x64.
    assert nmea_checksum("GPGLL,,,,,,V,N") == "64"


def test_can_log_decodes_with_dbc(logs):
    decoder = DbcDecoder(logs.dbc, CAN_SIGNALS, clock=time.monotonic)
    records = list(read_candump_log(logs.candump))
    for record in records:
        decoder.process(record.message)
    latest = decoder.latest()
    assert len(records) == 2 * 201
    assert decoder.decode_errors == 0
    assert latest["speed"].value == pytest.approx(43.2)
    assert latest["speed"].unit == "km/h"
    assert abs(latest["steering_angle"].value) <= 2.0
