"""Top-k classes from a classifier's output vector."""

from __future__ import annotations

import numpy as np

from edge_sdk.package.results import Classification
from edge_sdk.runtime.postprocess.naming import label_for


def to_probabilities(values: np.ndarray) -> np.ndarray:
    """Return the values as scores in [0, 1]: unchanged when they already are, else their softmax.

    NOTE: logits that all happen to lie in [0, 1] are taken as scores
    unchanged. Such logits are rare but possible.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size and float(values.min()) >= 0.0 and float(values.max()) <= 1.0 + 1e-6:
        return values
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def best_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the k largest values, largest first, ties broken by the lower index.

    Quantized outputs tie often (many classes at 0), so the tie rule keeps
    results identical between the quantized and the float path.
    """
    flat = np.asarray(values).reshape(-1)
    k = max(1, min(k, flat.size))
    kth_largest = np.partition(flat, flat.size - k)[flat.size - k]
    above = np.flatnonzero(flat > kth_largest)
    tied = np.flatnonzero(flat == kth_largest)[: k - above.size]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -flat[chosen].astype(np.float64)))]


def top_k(
    scores: np.ndarray, labels: list[str] | None, label_offset: int, k: int, score_threshold: float = 0.0
) -> tuple[Classification, ...]:
    """Return the k best classes with a score of at least `score_threshold`, best first."""
    probabilities = to_probabilities(scores)
    best = best_indices(probabilities, k)
    return tuple(
        Classification(int(i), label_for(int(i), labels, label_offset), float(probabilities[i]))
        for i in best
        if probabilities[i] >= score_threshold
    )


def top_k_quantized(
    values: np.ndarray, scale: float, zero_point: int, labels: list[str] | None, label_offset: int, k: int
) -> tuple[Classification, ...] | None:
    """Return the top k of a quantized output without dequantizing all of it, or None when it contains logits.

    Dequantization with a positive scale keeps the order of values, so the
    best classes can be picked on the raw integers. Only when every value
    dequantizes into [0, 1] are they scores already; otherwise the caller
    must dequantize and apply softmax with `top_k`. When the tensor's whole
    integer range dequantizes into [0, 1] (a softmax output), the values need
    no per-call range check.
    """
    flat = np.asarray(values).reshape(-1)
    if scale <= 0 or flat.size == 0 or flat.dtype.kind not in "iu":
        return None
    if not _range_is_scores(flat.dtype, scale, zero_point):
        lowest = (int(flat.min()) - zero_point) * scale
        highest = (int(flat.max()) - zero_point) * scale
        if lowest < 0.0 or highest > 1.0 + 1e-6:
            return None
    # ~x reverses the order of any integer type, so a stable ascending sort of it puts the
    # largest values first and breaks ties by the lower index, as best_indices does.
    best = np.argsort(~flat, kind="stable")[: max(1, min(k, flat.size))]
    return tuple(
        Classification(int(i), label_for(int(i), labels, label_offset), (int(flat[i]) - zero_point) * scale) for i in best
    )


def _range_is_scores(dtype: np.dtype, scale: float, zero_point: int) -> bool:
    """Tell whether every value of the integer type dequantizes into [0, 1]."""
    info = np.iinfo(dtype)
    return (info.min - zero_point) * scale >= 0.0 and (info.max - zero_point) * scale <= 1.0 + 1e-6
