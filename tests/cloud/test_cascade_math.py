"""The cascade arithmetic of tools/cascade_eval.py on hand-checked cases (the full evaluation trains models and is a tool)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "cascade_eval.py"


@pytest.fixture(scope="module")
def cascade_eval():
    spec = importlib.util.spec_from_file_location("cascade_eval", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cascade_eval"] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("cascade_eval", None)


TRUTH = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
# The edge is wrong on frames 2, 5 and 8, which are also its least confident.
EDGE = np.array([0, 1, 9, 3, 4, 9, 6, 7, 9, 9])
EDGE_SCORES = np.array([0.99, 0.95, 0.40, 0.97, 0.92, 0.55, 0.98, 0.91, 0.60, 0.96])
# The cloud is right everywhere except frame 9.
CLOUD = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0])


def test_cascade_curve_at_known_thresholds(cascade_eval) -> None:
    points = {point.threshold: point for point in cascade_eval.cascade_curve(TRUTH, EDGE, EDGE_SCORES, CLOUD, [0.0, 0.5, 0.61, 1.0])}

    assert points[0.0].escalated_share == 0.0
    assert points[0.0].cascade_top1 == 0.7
    assert points[0.5].escalated_share == 0.1
    assert points[0.5].cascade_top1 == 0.8
    assert points[0.61].escalated_share == 0.3
    assert points[0.61].cascade_top1 == 1.0
    assert points[0.61].relative_to_cloud == pytest.approx(1.0 / 0.9, abs=1e-4)
    assert points[1.0].escalated_share == 1.0
    assert points[1.0].cascade_top1 == 0.9


def test_operating_point_is_lowest_reaching_target(cascade_eval) -> None:
    point = cascade_eval.operating_point(TRUTH, EDGE, EDGE_SCORES, CLOUD)

    # 98% of the cloud's 0.9 is 0.882. Escalating frames scored below 0.55 (frame 2) reaches 0.8,
    # escalating those below 0.60 (frames 2 and 5) reaches 0.9.
    assert point is not None
    assert point.threshold == 0.60
    assert point.escalated_share == 0.2
    assert point.cascade_top1 == 0.9
