"""Read image files and turn them into model inputs with the runtime's own preprocessing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edge_sdk.package.manifest import InputSpec

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


def list_images(folder: Path) -> list[Path]:
    """Return every image file under `folder` (recursively), sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_bgr(path: Path) -> np.ndarray | None:
    """Decode an image file as an OpenCV BGR frame; None when OpenCV cannot decode it."""
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def normalize_frames(frames: Iterable[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Run each BGR frame through `edge_sdk.runtime.preprocess.normalize` and stack them [N, H, W, C]."""
    from edge_sdk.runtime.preprocess import normalize

    tensors = [normalize(frame, spec)[0] for frame in frames]
    if not tensors:
        return np.zeros((0, spec.height, spec.width, spec.channels), dtype=np.float32)
    return np.stack(tensors).astype(np.float32, copy=False)


def evenly_spaced(count: int, samples: int) -> list[int]:
    """Pick `samples` indices spread evenly over `range(count)` (all of them when there are fewer)."""
    if samples >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, samples).round()})
