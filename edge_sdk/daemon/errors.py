"""Errors of the on-vehicle daemon."""

from __future__ import annotations

from typing import Any

from edge_sdk.errors import ConfigError, EdgeSdkError


class DaemonError(EdgeSdkError):
    """The daemon cannot start or keep running; the message names the part and what to do."""


class DaemonConfigError(DaemonError, ConfigError):
    """A config file is unreadable or a key is missing or invalid.

    `key` is the dotted key (`sources[0].fps_limit`) and `value` the value
    read, so callers can point at the exact spot.
    """

    def __init__(self, message: str, *, key: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value
