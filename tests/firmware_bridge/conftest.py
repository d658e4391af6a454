"""Fixtures of the firmware_bridge tests: the vehicle simulator module from tools/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture(scope="session")
def vehicle_sim() -> ModuleType:
    """tools/vehicle_sim.py imported as a module."""
    spec = importlib.util.spec_from_file_location("vehicle_sim", TOOLS_DIR / "vehicle_sim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vehicle_sim"] = module
    spec.loader.exec_module(module)
    return module
