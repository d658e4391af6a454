"""Camera sources read with OpenCV: V4L2 devices, files, RTSP/HTTP URLs and GStreamer pipelines.

`make_source(kind, source_id, **options)` builds one from the table below;
each kind lives in its own module, imported only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from edge_sdk.sources.base import LossSettings, Source, SourceState, SourceStats
from edge_sdk.sources.errors import NoDecodableFramesError, SourceClosedError, SourceConfigError, SourceError, SourceOpenError
from edge_sdk.sources.frame import Frame

SOURCE_KINDS: dict[str, str] = {
    "device": "edge_sdk.sources.device:DeviceSource",
    "file": "edge_sdk.sources.file:FileSource",
    "url": "edge_sdk.sources.url:UrlSource",
    "gstreamer": "edge_sdk.sources.gstreamer:GStreamerSource",
}


def source_class(kind: str) -> type[Source]:
    """Return the Source subclass registered for `kind`, importing its module."""
    try:
        module_name, class_name = SOURCE_KINDS[kind].split(":")
    except KeyError:
        raise SourceConfigError(f"source kind {kind!r} is unknown: use one of {', '.join(SOURCE_KINDS)}") from None
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def make_source(kind: str, source_id: str, **options: Any) -> Source:
    """Build a source of `kind`; options are the keyword arguments of its class."""
    return source_class(kind)(source_id, **options)


__all__ = [
    "SOURCE_KINDS",
    "Frame",
    "LossSettings",
    "NoDecodableFramesError",
    "Source",
    "SourceClosedError",
    "SourceConfigError",
    "SourceError",
    "SourceOpenError",
    "SourceState",
    "SourceStats",
    "make_source",
    "source_class",
]
