"""Errors of the cloud side: the MaaS worker, the telemetry subscribers and their storage."""

from edge_sdk.errors import EdgeSdkError


class CloudError(EdgeSdkError):
    """Base class for errors raised by `edge_sdk.cloud`."""


class StorageError(CloudError, OSError):
    """The telemetry database cannot be opened, read or written."""


class QueryError(CloudError, ValueError):
    """A query, export or summary request has an invalid argument."""


class RequestError(CloudError, ValueError):
    """An escalation request is malformed: the message names the field and the rule it broke."""


class WorkerModelError(CloudError, ValueError):
    """The MaaS worker's model cannot be loaded or cannot run a request."""
