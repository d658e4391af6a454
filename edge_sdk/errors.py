"""Root of every exception edge-sdk raises on purpose.

Each package keeps its own small error tree under `EdgeSdkError`; classes also
inherit the matching builtin so callers can catch `FileNotFoundError` or
`TimeoutError` without knowing edge-sdk.
"""


class EdgeSdkError(Exception):
    """Base class for every error edge-sdk raises on purpose."""


class ConfigError(EdgeSdkError, ValueError):
    """A configuration value is missing or invalid; the message names the key and the value."""
