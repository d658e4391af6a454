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
    """Log one warning naming the configured labels that no model produces, by key; return those labels.

    `events.labels` and `alerts[].label` are compared with every model's labels,
    and `models.<name>.escalation.labels` with that model's own. A model object
    without a `labels` attribute (a test predictor, say) is skipped, because
    there is nothing to compare against.
    """
    label_lists = {name: getattr(model, "labels") for name, model in models.items() if hasattr(model, "labels")}
    if not label_lists:
        return []
    found: dict[str, list[str]] = {}
    shared = find_unknown_labels(config.events.labels, label_lists)
    if shared:
        found["events.labels"] = shared
    alerts = find_unknown_labels(tuple(alert.label for alert in config.alerts), label_lists)
    if alerts:
        found["alerts[].label"] = alerts
    for name, labels in label_lists.items():
        escalation = config.models[name].escalation if name in config.models else None
        if escalation is not None and escalation.enabled:
            own = find_unknown_labels(escalation.labels, {name: labels})
            if own:
                found[f"models.{name}.escalation.labels"] = own
    if not found:
        return []

    described = []
    for name, labels in sorted(label_lists.items()):
        described.append(f"{name}: {len(labels)} labels" if labels else f"{name}: no label list, so its labels are class_0, class_1, ...")
    logger.warning(
        "daemon: labels that no model produces, so they never match: %s (models: %s). "
        "Set models.<name>.labels to the model's labels file or correct the labels",
        "; ".join(f"{key} {', '.join(repr(label) for label in labels)}" for key, labels in found.items()),
        "; ".join(described),
    )
    return [label for labels in found.values() for label in labels]
