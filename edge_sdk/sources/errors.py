"""Errors of the camera sources."""

from edge_sdk.errors import EdgeSdkError


class SourceError(EdgeSdkError):
    """A camera source failed; the message names the source id and the input."""


class SourceOpenError(SourceError, ConnectionError):
    """The input could not be opened now; the source retries with backoff."""


class SourceConfigError(SourceError, ValueError):
    """A source option is invalid or the input can never work (missing file, no backend)."""


class NoDecodableFramesError(SourceError, ValueError):
    """A video file opened but decoded zero frames."""


class SourceClosedError(SourceError):
    """`get()` was called on a source that ended, failed or was closed."""
