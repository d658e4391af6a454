"""Read label files: one label per line, or `ID LABEL` lines as pycoral's label files use."""

from __future__ import annotations

import re
from pathlib import Path

from edge_sdk.runtime.errors import ModelConfigError, ModelNotFoundError

# Placeholder names exporters put on line 0 for the background class.
BACKGROUND_LABELS = frozenset({"background", "unlabeled", "???", "__background__", "bg"})

_ID_LINE = re.compile(r"^\s*(\d+)[\s:,]+(.*\S)\s*$")


def read_labels(path: str | Path) -> list[str]:
    """Return the labels of a file indexed by line, or by ID when every non-empty line starts with one.

    IDs that a numbered file skips get the label `class_<id>`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"labels file {path} not found: give the labels file that belongs to the model") from exc
    except UnicodeDecodeError as exc:
        raise ModelConfigError(f"labels file {path} is not UTF-8 text ({exc}): give a text file with one label per line") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ModelConfigError(f"labels file {path} is empty: give a text file with one label per line")

    matches = [_ID_LINE.match(line) for line in lines if line.strip()]
    if all(matches) and len(matches) > 1:
        by_id = {int(m.group(1)): m.group(2) for m in matches if m}
        if len(by_id) == len(matches):
            return [by_id.get(i, f"class_{i}") for i in range(max(by_id) + 1)]
    return [line.strip() for line in lines]


def guess_label_offset(labels: list[str], num_classes: int | None, task: str) -> int:
    """Guess how many leading lines of a labels file come before class 0 of a bare model.

    Two cases give 1: a detector whose labels start with a background
    placeholder (its class ids skip the background), and a classifier with
    exactly one label more than outputs. Everything else gives 0.
    """
    if not labels:
        return 0
    if task == "detection":
        return 1 if labels[0].strip().lower() in BACKGROUND_LABELS else 0
    if num_classes is not None and len(labels) == num_classes + 1:
        return 1
    return 0
