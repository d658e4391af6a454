"""Class id to label text, shared by every task."""

from __future__ import annotations


def label_for(class_id: int, labels: list[str] | None, label_offset: int) -> str:
    """Return the label of class `class_id` (line `class_id + label_offset`), or `class_<id>` when there is none."""
    position = class_id + label_offset
    if labels is not None and 0 <= position < len(labels):
        return labels[position]
    return f"class_{class_id}"
