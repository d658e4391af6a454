"""Class mask and per-class pixel fractions from a segmentation output."""

from __future__ import annotations

import numpy as np

from edge_sdk.package.results import Segmentation
from edge_sdk.runtime.errors import ModelConfigError
from edge_sdk.runtime.postprocess.naming import label_for
from edge_sdk.runtime.preprocess import InputTransform


def decode_segmentation(
    output: np.ndarray, *, transform: InputTransform, labels: list[str] | None, label_offset: int
) -> Segmentation:
    """Return the class mask at model-input resolution and the fraction of frame pixels of each class present.

    `output` is [1, H, W, C] class scores (argmax over C) or [1, H, W] class
    ids. Fractions count only the part of the mask that shows the frame, so
    letterbox bars do not count as a class.
    """
    values = np.asarray(output)
    if values.ndim == 4:
        mask = np.argmax(values[0], axis=-1).astype(np.int32)
    elif values.ndim == 3:
        mask = np.rint(values[0]).astype(np.int32)
    else:
        raise ModelConfigError(f"segmentation output has shape {list(values.shape)}: expected [1, H, W, classes] or [1, H, W]; pass the right task to Model.load")

    region = mask[_frame_rows(transform, mask.shape), _frame_columns(transform, mask.shape)]
    ids, counts = np.unique(region, return_counts=True)
    total = max(1, int(region.size))
    fractions = {label_for(int(i), labels, label_offset): int(n) / total for i, n in zip(ids, counts)}
    return Segmentation(mask=mask, class_fractions=fractions)


def _frame_rows(transform: InputTransform, shape: tuple[int, ...]) -> slice:
    scale = shape[0] / transform.input_height
    top = transform.offset_y * scale
    bottom = top + transform.frame_height * transform.scale_y * scale
    return slice(max(0, int(np.floor(top))), min(shape[0], int(np.ceil(bottom))))


def _frame_columns(transform: InputTransform, shape: tuple[int, ...]) -> slice:
    scale = shape[1] / transform.input_width
    left = transform.offset_x * scale
    right = left + transform.frame_width * transform.scale_x * scale
    return slice(max(0, int(np.floor(left))), min(shape[1], int(np.ceil(right))))
