"""Per-period summary of one source's results: frames, detections per label, scores."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edge_sdk.package.results import InferenceResult


class PeriodSummary:
    """Accumulates results of one source until `take()` returns and resets them."""

    def __init__(self, source_id: str, min_score: float, started: float) -> None:
        self.source_id = source_id
        self.min_score = min_score
        self._started = started
        self._reset()

    def _reset(self) -> None:
        self._frames = 0
        self._labels: Counter[str] = Counter()
        self._frames_with_label: Counter[str] = Counter()
        self._top_score_sum = 0.0
        self._max_objects = 0
        self._invoke_ms_sum = 0.0

    def add(self, result: InferenceResult) -> None:
        self._frames += 1
        self._top_score_sum += result.top_score
        self._invoke_ms_sum += result.invoke_ms
        kept = [d.label for d in result.detections if d.score >= self.min_score]
        kept += [c.label for c in result.classifications[:1] if c.score >= self.min_score]
        self._labels.update(kept)
        self._frames_with_label.update(set(kept))
        self._max_objects = max(self._max_objects, len(kept))

    def take(self, now: float) -> dict[str, Any]:
        """Return the summary body for the period ending `now` (Unix seconds) and start a new period."""
        frames = self._frames
        body = {
            "type": "summary",
            "source_id": self.source_id,
            "period_start": self._started,
            "period_end": now,
            "frames": frames,
            "objects_by_label": dict(self._labels),
            "frames_with_label": dict(self._frames_with_label),
            "max_objects_in_frame": self._max_objects,
            "mean_top_score": round(self._top_score_sum / frames, 5) if frames else None,
            "mean_invoke_ms": round(self._invoke_ms_sum / frames, 3) if frames else None,
        }
        self._started = now
        self._reset()
        return body
