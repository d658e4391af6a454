"""Errors of the model package format."""

from edge_sdk.errors import EdgeSdkError


class PackageError(EdgeSdkError):
    """A model package is missing, unreadable, unsafe to extract or fails its hash check."""


class ManifestError(PackageError, ValueError):
    """`manifest.json` is invalid: the message names the key, the value and the rule."""
