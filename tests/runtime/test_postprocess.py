import numpy as np
import pytest

from edge_sdk.runtime.postprocess.classification import to_probabilities, top_k, top_k_quantized
from edge_sdk.runtime.postprocess.naming import label_for


@pytest.mark.parametrize("dtype, scale, zero_point", [("uint8", 1 / 256, 0), ("int8", 1 / 256, -128), ("uint8", 1 / 255, 0)])
def test_top_k_quantized_matches_dequantized(dtype, scale, zero_point):
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)
    labels = [f"label {i}" for i in range(1001)]
    for _ in range(20):
        raw = rng.integers(max(info.min, zero_point), info.max + 1, size=1001).astype(dtype)
        fast = top_k_quantized(raw, scale, zero_point, labels, 0, 5)
        reference = top_k((raw.astype(np.float32) - zero_point) * scale, labels, 0, 5)
        assert fast is not None
        assert [c.score for c in fast] == pytest.approx([c.score for c in reference])
        assert [c.class_id for c in fast] == [c.class_id for c in reference]
        assert [c.score for c in fast] == sorted((c.score for c in fast), reverse=True)


def test_top_k_quantized_checks_wide_range():
    # scale 0.01 maps 0..255 to 0..2.55, so only the values decide whether they are scores.
    raw = np.array([0, 40, 100, 40, 7], dtype=np.uint8)
    best = top_k_quantized(raw, 0.01, 0, None, 0, 3)
    assert best is not None
    assert [c.class_id for c in best] == [2, 1, 3]
    assert top_k_quantized(np.array([0, 101], dtype=np.uint8), 0.01, 0, None, 0, 1) is None


def test_top_k_quantized_breaks_ties_by_index():
    raw = np.full(1001, -128, dtype=np.int8)
    raw[[900, 17, 500]] = 5
    best = top_k_quantized(raw, 1 / 256, -128, None, 0, 5)
    assert [c.class_id for c in best] == [17, 500, 900, 0, 1]


def test_top_k_quantized_leaves_logits_to_softmax():
    raw = np.array([0, 200, 255], dtype=np.uint8)
    assert top_k_quantized(raw, 0.1, 100, None, 0, 2) is None  # dequantizes to [-10, 10, 15.5]
    assert top_k_quantized(raw, 0.0, 0, None, 0, 2) is None


def test_softmax_applied_to_logits():
    probabilities = to_probabilities(np.array([2.0, -1.0, 0.5]))
    assert probabilities.sum() == pytest.approx(1.0)
    assert int(np.argmax(probabilities)) == 0
    assert np.array_equal(to_probabilities(np.array([0.2, 0.7, 0.1])), np.array([0.2, 0.7, 0.1], dtype=np.float32))


def test_top_k_threshold_and_label_offset():
    labels = ["background", "cat", "dog"]
    result = top_k(np.array([0.1, 0.6, 0.3]), labels, 1, 3, score_threshold=0.2)
    assert [(c.class_id, c.label) for c in result] == [(1, "dog"), (2, "class_2")]
    assert label_for(-1, labels, 1) == "background"
