"""CPU temperature from Linux sysfs thermal zones, where the machine exposes them."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

THERMAL_ROOT = Path("/sys/class/thermal")
# Zone types that name the CPU on common boards (x86 packages, Raspberry Pi, Jetson).
_CPU_ZONE_TYPES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "CPU-therm", "soc_thermal", "acpitz")


def read_cpu_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    """Return the CPU temperature in degrees Celsius, or None when no readable thermal zone exists.

    Prefers a zone whose type names the CPU, else the hottest zone.
    """
    readings: dict[str, float] = {}
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            zone_type = (zone / "type").read_text().strip()
            millidegrees = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        readings[zone_type] = millidegrees / 1000.0
    if not readings:
        return None
    for zone_type in _CPU_ZONE_TYPES:
        if zone_type in readings:
            return readings[zone_type]
    return max(readings.values())
