"""Typed inference results, shared by the runtime, the daemon and the cloud side.

Records are frozen and serialize to plain JSON-compatible dicts with
`to_dict()`; `from_dict()` reads them back (a segmentation mask is not
serialized, only its per-class pixel fractions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """An axis-aligned box in frame pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def iou(self, other: BoundingBox) -> float:
        """Intersection over union; 0.0 when either box is empty."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        intersection = ix * iy
        union = self.area + other.area - intersection
        return intersection / union if union > 0 else 0.0

    def to_list(self) -> list[float]:
        return [round(self.x1, 2), round(self.y1, 2), round(self.x2, 2), round(self.y2, 2)]


@dataclass(frozen=True, slots=True)
class Classification:
    """One class of a classifier's top-k, score in [0, 1]."""

    class_id: int
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "label": self.label, "score": round(float(self.score), 5)}


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object, box in frame pixels."""

    class_id: int
    label: str
    score: float
    box: BoundingBox

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "label": self.label,
            "score": round(float(self.score), 5),
            "box": self.box.to_list(),
        }


@dataclass(frozen=True, slots=True)
class Segmentation:
    """A per-pixel class mask (model input resolution) and the fraction of pixels of each class."""

    mask: np.ndarray | None
    class_fractions: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"class_fractions": {k: round(float(v), 5) for k, v in self.class_fractions.items()}}


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """The outcome of one `Model.predict()` call. Times are in milliseconds."""

    task: str
    model_name: str
    model_version: str
    classifications: tuple[Classification, ...] = ()
    detections: tuple[Detection, ...] = ()
    segmentation: Segmentation | None = None
    preprocess_ms: float = 0.0
    invoke_ms: float = 0.0
    postprocess_ms: float = 0.0
    frame_size: tuple[int, int] | None = None  # (width, height) of the frame the boxes refer to
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def top(self) -> Classification | Detection | None:
        """The highest-scoring classification or detection, or None."""
        candidates = self.classifications or self.detections
        return max(candidates, key=lambda c: c.score) if candidates else None

    @property
    def top_score(self) -> float:
        top = self.top
        return float(top.score) if top is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task": self.task,
            "model": {"name": self.model_name, "version": self.model_version},
            "timing_ms": {
                "preprocess": round(self.preprocess_ms, 3),
                "invoke": round(self.invoke_ms, 3),
                "postprocess": round(self.postprocess_ms, 3),
            },
        }
        if self.frame_size is not None:
            data["frame_size"] = list(self.frame_size)
        if self.task == "classification":
            data["classifications"] = [c.to_dict() for c in self.classifications]
        elif self.task == "detection":
            data["detections"] = [d.to_dict() for d in self.detections]
        if self.segmentation is not None:
            data["segmentation"] = self.segmentation.to_dict()
        if self.extra:
            data["extra"] = self.extra
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceResult:
        timing = data.get("timing_ms", {})
        segmentation = data.get("segmentation")
        frame_size = data.get("frame_size")
        return cls(
            task=data["task"],
            model_name=data["model"]["name"],
            model_version=data["model"]["version"],
            classifications=tuple(Classification(**c) for c in data.get("classifications", ())),
            detections=tuple(
                Detection(d["class_id"], d["label"], d["score"], BoundingBox(*d["box"])) for d in data.get("detections", ())
            ),
            segmentation=Segmentation(None, dict(segmentation["class_fractions"])) if segmentation else None,
            preprocess_ms=timing.get("preprocess", 0.0),
            invoke_ms=timing.get("invoke", 0.0),
            postprocess_ms=timing.get("postprocess", 0.0),
            frame_size=tuple(frame_size) if frame_size else None,
            extra=dict(data.get("extra", {})),
        )
