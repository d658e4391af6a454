"""Warn at start-up about configured labels that no loaded model can produce.

A bare `.tflite` file without a `labels` key names its classes `class_0`,
`class_1`, ..., so `events.labels = ["car"]` would silently track nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from edge_sdk.daemon.config import DaemonConfig

logger = logging.getLogger(__name__)

# The runtime names a class without a label `class_<id>`, so this form can always occur.
_FALLBACK_LABEL = re.compile(r"class_\d+")


def find_unknown_labels(wanted: tuple[str, ...], label_lists: Mapping[str, list[str] | None]) -> list[str]:
    """Return the labels of `wanted` that are in none of the models' label lists, in their config order."""
    known: set[str] = set()
    for labels in label_lists.values():
        known.update(labels or ())
    unknown: list[str] = []
    for label in wanted:
        if label not in known and not _FALLBACK_LABEL.fullmatch(label) and label not in unknown:
            unknown.append(label)
    return unknown


def warn_unknown_labels(config: DaemonConfig, models: Mapping[str, object]) -> list[str]:
    """Log one warning naming the labels of `events.labels` and `alerts[].label` that no model produces; return them.

    A model object without a `labels` attribute (a test predictor, say) is skipped,
    because there is nothing to compare against.
    """
    label_lists = {name: getattr(model, "labels") for name, model in models.items() if hasattr(model, "labels")}
    if not label_lists:
        return []
    wanted = (*config.events.labels, *(alert.label for alert in config.alerts))
    unknown = find_unknown_labels(wanted, label_lists)
    if not unknown:
        return unknown
    described = []
    for name, labels in sorted(label_lists.items()):
        described.append(f"{name}: {len(labels)} labels" if labels else f"{name}: no label list, so its labels are class_0, class_1, ...")
    logger.warning(
        "daemon: labels %s in events.labels or alerts[].label are not in any model's label list (%s), so they never match: "
        "set models.<name>.labels to the model's labels file or correct the labels",
        ", ".join(repr(label) for label in unknown),
        "; ".join(described),
    )
    return unknown
