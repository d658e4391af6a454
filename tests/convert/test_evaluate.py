"""Comparison of converted outputs with the float source: top-1, agreement, diffs, collapsed outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.convert.errors import ModelCheckError
from edge_sdk.convert.evaluate import compare


def test_compare_counts_top1_and_agreement():
    source = [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)]
    converted = [np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]], np.float32)]
    labels = np.array([0, 1, 0, 0])

    evaluation = compare(source, converted, labels)

    assert evaluation.samples == 4
    assert evaluation.float_top1 == pytest.approx(0.75)
    assert evaluation.quantized_top1 == pytest.approx(0.5)
    assert evaluation.top1_agreement == pytest.approx(0.75)
    assert evaluation.accuracy_drop_points == pytest.approx(25.0)
    assert evaluation.mean_abs_diff[0] == pytest.approx(0.1)
    assert evaluation.constant_outputs == ()


def test_compare_flags_collapsed_output():
    rng = np.random.default_rng(0)
    source = [rng.uniform(0, 1, (6, 3)).astype(np.float32), rng.uniform(0, 1, (6, 2)).astype(np.float32)]
    converted = [source[0].copy(), np.full((6, 2), 0.5, np.float32)]

    evaluation = compare(source, converted, None)

    assert evaluation.constant_outputs == (1,)
    assert evaluation.float_top1 is None
    assert evaluation.accuracy_drop_points == pytest.approx(0.0)


def test_compare_matches_reordered_outputs_by_size():
    source = [np.zeros((2, 4), np.float32), np.ones((2, 1), np.float32)]
    converted = [np.ones((2, 1), np.float32), np.zeros((2, 4), np.float32)]

    evaluation = compare(source, converted, None)

    assert evaluation.mean_abs_diff == (0.0, 0.0)


def test_compare_rejects_missing_output():
    with pytest.raises(ModelCheckError) as caught:
        compare([np.zeros((2, 4)), np.zeros((2, 1))], [np.zeros((2, 4))], None)
    assert "1 outputs but the source has 2" in str(caught.value)
