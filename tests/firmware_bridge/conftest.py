"""Fixtures of the firmware_bridge tests."""

from __future__ import annotations

from types import ModuleType

import pytest

import firmware_bridge.simulator


@pytest.fixture(scope="session")
def vehicle_sim() -> ModuleType:
    """The vehicle simulator module (pseudo-terminal devices fed from logs)."""
    return firmware_bridge.simulator
