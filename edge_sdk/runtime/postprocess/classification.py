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


def top_k(
    scores: np.ndarray, labels: list[str] | None, label_offset: int, k: int, score_threshold: float = 0.0
) -> tuple[Classification, ...]:
    """Return the k best classes with a score of at least `score_threshold`, best first."""
    probabilities = to_probabilities(scores)
    k = max(1, min(k, probabilities.size))
    best = np.argpartition(-probabilities, k - 1)[:k]
    best = best[np.argsort(-probabilities[best], kind="stable")]
    return tuple(
        Classification(int(i), label_for(int(i), labels, label_offset), float(probabilities[i]))
        for i in best
        if probabilities[i] >= score_threshold
    )
