"""Detections from the four outputs of `TFLite_Detection_PostProcess`."""

from __future__ import annotations

import numpy as np

from edge_sdk.package.results import BoundingBox, Detection
from edge_sdk.runtime.errors import ModelConfigError
from edge_sdk.runtime.postprocess.naming import label_for
from edge_sdk.runtime.preprocess import InputTransform

BOX_ORDERS = ("yxyx", "xyxy")


def decode_detections(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    count: np.ndarray,
    *,
    box_order: str,
    transform: InputTransform,
    labels: list[str] | None,
    label_offset: int,
    score_threshold: float,
) -> tuple[Detection, ...]:
    """Return the detections scoring at least `score_threshold`, best first, boxes in frame pixels.

    `boxes` are normalized to [0, 1] of the model input in `box_order`
    (`yxyx` for TFLite_Detection_PostProcess). Only the first `count` rows are valid.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    valid = min(int(np.asarray(count).reshape(-1)[0]), boxes.shape[0], classes.size, scores.size)
    keep = np.flatnonzero(scores[:valid] >= score_threshold)
    if keep.size == 0:
        return ()
    keep = keep[np.argsort(-scores[keep], kind="stable")]

    selected = boxes[keep]
    if box_order == "yxyx":
        selected = selected[:, [1, 0, 3, 2]]
    elif box_order != "xyxy":
        raise ModelConfigError(f"detection.box_order is {box_order!r}: expected one of {', '.join(BOX_ORDERS)}; fix the manifest")
    frame_boxes = transform.normalized_boxes_to_frame(np.clip(selected, 0.0, 1.0))

    detections = []
    for row, index in enumerate(keep):
        class_id = int(round(float(classes[index])))
        x1, y1, x2, y2 = (float(v) for v in frame_boxes[row])
        box = BoundingBox(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        detections.append(Detection(class_id, label_for(class_id, labels, label_offset), float(scores[index]), box))
    return tuple(detections)
