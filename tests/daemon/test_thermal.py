"""CPU temperature from a sysfs-shaped folder written by the test."""

from __future__ import annotations

from pathlib import Path

from edge_sdk.daemon.thermal import read_cpu_temperature_c


def write_zone(root: Path, index: int, zone_type: str, millidegrees: str) -> None:
    zone = root / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(zone_type + "\n")
    (zone / "temp").write_text(millidegrees + "\n")


def test_thermal_prefers_cpu_zone(tmp_path: Path) -> None:
    write_zone(tmp_path, 0, "gpu-thermal", "71000")
    write_zone(tmp_path, 1, "cpu-thermal", "54500")
    assert read_cpu_temperature_c(tmp_path) == 54.5


def test_thermal_falls_back_to_hottest_zone(tmp_path: Path) -> None:
    write_zone(tmp_path, 0, "board", "41000")
    write_zone(tmp_path, 1, "pmic", "47250")
    assert read_cpu_temperature_c(tmp_path) == 47.25


def test_thermal_skips_unreadable_zone(tmp_path: Path) -> None:
    write_zone(tmp_path, 0, "cpu-thermal", "not a number")
    write_zone(tmp_path, 1, "board", "40000")
    assert read_cpu_temperature_c(tmp_path) == 40.0


def test_thermal_none_without_zones(tmp_path: Path) -> None:
    assert read_cpu_temperature_c(tmp_path) is None
