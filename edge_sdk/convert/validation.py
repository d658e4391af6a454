"""Load a labelled validation set: one folder per class, or a CSV of image path and label.

A label is matched to a model output index in this order: a label name from
the labels file, then an integer class id (so GTSRB folders `00000`..`00042`
map to classes 0..42). Images go through the runtime's `normalize`, like
calibration frames.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sdk.convert.errors import ValidationSetError
from edge_sdk.convert.images import IMAGE_SUFFIXES, normalize_frames, read_bgr
from edge_sdk.package.manifest import InputSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ValidationSet:
    """Normalized inputs [N, H, W, C] float32 with their class indices and image paths."""

    inputs: np.ndarray
    labels: np.ndarray
    paths: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_validation(
    path: str | Path, spec: InputSpec, labels: Sequence[str] | None, num_classes: int, *, progress: bool = False
) -> ValidationSet:
    """Read a labelled set for a classifier with `num_classes` outputs named by `labels` (None: class ids only)."""
    path = Path(path)
    if not path.exists():
        raise ValidationSetError(f"validation set {path} not found: pass a folder with one sub-folder per class or a CSV of path,label")
    if path.is_dir():
        entries = _entries_from_folders(path)
    elif path.suffix.lower() == ".csv":
        entries = _entries_from_csv(path)
    else:
        raise ValidationSetError(f"validation set {path} is neither a folder of class folders nor a .csv file")
    if not entries:
        raise ValidationSetError(f"validation set {path} contains no labelled images")

    resolver = _LabelResolver(labels, num_classes, path)
    class_ids = np.asarray([resolver.resolve(label, image) for image, label in entries], dtype=np.int64)
    frames = _read_frames([image for image, _ in entries], progress)
    inputs = normalize_frames(frames, spec)
    logger.info("validation: %d images in %d classes from %s", len(entries), len(set(class_ids.tolist())), path)
    return ValidationSet(inputs, class_ids, tuple(str(image) for image, _ in entries), str(path))


def _entries_from_folders(path: Path) -> list[tuple[Path, str]]:
    entries = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        for file in sorted(folder.iterdir()):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                entries.append((file, folder.name))
    return entries


def _entries_from_csv(path: Path) -> list[tuple[Path, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
    if rows and rows[0][0].strip().lower() in ("path", "file", "filename", "image"):
        rows = rows[1:]
    entries = []
    for line_number, row in enumerate(rows, start=2):
        if len(row) < 2:
            raise ValidationSetError(f"{path} row {row!r} has {len(row)} column(s): expected path,label")
        image = Path(row[0].strip())
        entries.append((image if image.is_absolute() else path.parent / image, row[1].strip()))
    return entries


class _LabelResolver:
    def __init__(self, labels: Sequence[str] | None, num_classes: int, source: Path) -> None:
        self._by_name = {name: index for index, name in enumerate(labels or ())}
        self._num_classes = num_classes
        self._source = source

    def resolve(self, label: str, image: Path) -> int:
        if label in self._by_name:
            return self._by_name[label]
        if label.lstrip("-").isdigit():
            class_id = int(label)
            if 0 <= class_id < self._num_classes:
                return class_id
            raise ValidationSetError(
                f"validation label {label!r} of {image} is outside the model's {self._num_classes} classes (0..{self._num_classes - 1})"
            )
        raise ValidationSetError(
            f"validation label {label!r} of {image} is neither a name in the labels file nor a class id: "
            "name class folders by label or by class index"
        )


def _read_frames(files: list[Path], progress: bool) -> list[np.ndarray]:
    from tqdm import tqdm

    frames = []
    for file in tqdm(files, desc="validation", unit="image", disable=not progress):
        if not file.is_file():
            raise ValidationSetError(f"validation image {file} not found: fix its path in the CSV (paths are relative to the CSV)")
        frame = read_bgr(file)
        if frame is None:
            raise ValidationSetError(f"validation image {file} could not be decoded: remove it or replace it")
        frames.append(frame)
    return frames
