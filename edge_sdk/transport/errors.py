"""Errors of the MQTT transport.

Every class also inherits the builtin a caller would expect, so code written
without edge-sdk in mind can still catch `ValueError` or `OSError`.
"""

from __future__ import annotations

from edge_sdk.errors import ConfigError, EdgeSdkError


class TransportError(EdgeSdkError):
    """Base class of every error raised by `edge_sdk.transport`."""


class TopicError(TransportError, ValueError):
    """A topic or topic part breaks the topic layout; the message names the value."""


class PayloadError(TransportError, ValueError):
    """A payload is not a valid edge-sdk message.

    `field` is the dotted path of the offending field (for example
    `body.model.version`), or `"payload"` when the bytes are not JSON at all.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid payload field '{field}': {message}")
        self.field = field


class MqttConfigError(TransportError, ConfigError):
    """An MQTT setting (URL, TLS file, QoS, protocol, ...) is invalid; the message names the key."""


class SpoolError(TransportError, OSError):
    """The on-disk spool cannot be opened or written."""


class SpoolLockedError(SpoolError):
    """Another process (or another `Spool` in this one) has the spool file open."""


class SpoolCorruptError(SpoolError):
    """The spool file is not a readable SQLite database.

    The file has already been moved aside to `moved_to`; nothing was deleted.
    """

    def __init__(self, message: str, path: str, moved_to: str) -> None:
        super().__init__(message)
        self.path = path
        self.moved_to = moved_to

