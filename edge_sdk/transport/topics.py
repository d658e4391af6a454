"""MQTT topic layout: the only module that builds or parses edge-sdk topics.

Layout, one topic per sender and message kind::

    {prefix}/{vehicle_id}/results              per-frame results and period summaries
    {prefix}/{vehicle_id}/events               object appeared / updated / ended
    {prefix}/{vehicle_id}/status               retained: presence ("online"/"offline") and health
    {prefix}/{vehicle_id}/escalations          frames sent to the cloud for a second opinion
    {prefix}/{vehicle_id}/escalation_replies   cloud replies, one reply topic per vehicle
    {prefix}/{worker_id}/worker_status         status of a cloud MaaS worker

`prefix` may contain slashes (`fleet/eu`); vehicle and worker ids may not.
Subscribers use `fleet_filter(prefix, kind)` (`{prefix}/+/results`) and
`shared_filter(group, filter)` for `$share/{group}/...` load sharing.

`Priority` orders the outgoing spool: higher values are sent first and
dropped last when the spool is full.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from edge_sdk.transport.errors import TopicError

_FORBIDDEN_IN_LEVEL = ("/", "+", "#", "\x00")
_FORBIDDEN_IN_PREFIX = ("+", "#", "\x00")


class MessageKind(str, Enum):
    """Kind of an edge-sdk message; the value is the last topic level."""

    RESULTS = "results"
    EVENTS = "events"
    STATUS = "status"
    ESCALATIONS = "escalations"
    ESCALATION_REPLIES = "escalation_replies"
    WORKER_STATUS = "worker_status"


class Priority(IntEnum):
    """Spool priority: higher is sent earlier and dropped later."""

    FRAME = 10
    RESULT = 20
    STATUS = 30
    EVENT = 40


_DEFAULT_PRIORITY: dict[MessageKind, Priority] = {
    MessageKind.RESULTS: Priority.RESULT,
    MessageKind.EVENTS: Priority.EVENT,
    MessageKind.STATUS: Priority.STATUS,
    MessageKind.ESCALATIONS: Priority.FRAME,
    MessageKind.ESCALATION_REPLIES: Priority.RESULT,
    MessageKind.WORKER_STATUS: Priority.STATUS,
}


def default_priority(kind: MessageKind | None) -> Priority:
    """Return the spool priority of a message kind; unknown topics count as results."""
    if kind is None:
        return Priority.RESULT
    return _DEFAULT_PRIORITY[kind]


def parse_kind(value: str) -> MessageKind:
    """Return the `MessageKind` named by `value`, raising `TopicError` for an unknown name."""
    try:
        return MessageKind(value)
    except ValueError as exc:
        known = ", ".join(k.value for k in MessageKind)
        raise TopicError(f"unknown message kind {value!r}: use one of {known}") from exc


def validate_level(value: str, what: str) -> str:
    """Check that `value` is one non-empty topic level without wildcards; return it."""
    if not isinstance(value, str) or not value:
        raise TopicError(f"{what} must be a non-empty string, got {value!r}")
    bad = [c for c in _FORBIDDEN_IN_LEVEL if c in value]
    if bad:
        raise TopicError(f"{what} {value!r} contains {bad[0]!r}: ids may not contain '/', '+', '#' or NUL")
    if value.startswith("$"):
        raise TopicError(f"{what} {value!r} starts with '$', which brokers reserve for system topics")
    return value


def validate_prefix(prefix: str) -> str:
    """Check a topic prefix (slashes allowed, no wildcards, no empty levels); return it."""
    if not isinstance(prefix, str) or not prefix:
        raise TopicError(f"topic prefix must be a non-empty string, got {prefix!r}")
    bad = [c for c in _FORBIDDEN_IN_PREFIX if c in prefix]
    if bad:
        raise TopicError(f"topic prefix {prefix!r} contains {bad[0]!r}: a prefix may not contain wildcards or NUL")
    if prefix.startswith("$"):
        raise TopicError(f"topic prefix {prefix!r} starts with '$', which brokers reserve for system topics")
    if "" in prefix.split("/"):
        raise TopicError(f"topic prefix {prefix!r} has an empty level: remove leading, trailing or doubled '/'")
    return prefix


def topic_for(prefix: str, sender_id: str, kind: MessageKind) -> str:
    """Build `{prefix}/{sender_id}/{kind}` after validating each part."""
    return f"{validate_prefix(prefix)}/{validate_level(sender_id, 'vehicle id')}/{MessageKind(kind).value}"


@dataclass(frozen=True, slots=True)
class Topics:
    """All topics of one vehicle under one prefix."""

    prefix: str
    vehicle_id: str

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)
        validate_level(self.vehicle_id, "vehicle id")

    def for_kind(self, kind: MessageKind) -> str:
        return topic_for(self.prefix, self.vehicle_id, kind)

    @property
    def results(self) -> str:
        return self.for_kind(MessageKind.RESULTS)

    @property
    def events(self) -> str:
        return self.for_kind(MessageKind.EVENTS)

    @property
    def status(self) -> str:
        return self.for_kind(MessageKind.STATUS)

    @property
    def escalations(self) -> str:
        return self.for_kind(MessageKind.ESCALATIONS)

    @property
    def escalation_replies(self) -> str:
        return self.for_kind(MessageKind.ESCALATION_REPLIES)


def worker_status_topic(prefix: str, worker_id: str) -> str:
    """Topic on which a cloud MaaS worker publishes its own status."""
    return topic_for(prefix, worker_id, MessageKind.WORKER_STATUS)


def fleet_filter(prefix: str, kind: MessageKind | None = None) -> str:
    """Subscription filter for one kind from every vehicle, or every kind when `kind` is None."""
    validate_prefix(prefix)
    if kind is None:
        return f"{prefix}/+/+"
    return f"{prefix}/+/{MessageKind(kind).value}"


def shared_filter(group: str, topic_filter: str) -> str:
    """Wrap a filter in an MQTT shared subscription `$share/{group}/{filter}` (MQTT 5 and Mosquitto 3.1.1)."""
    validate_level(group, "shared subscription group")
    if not topic_filter:
        raise TopicError("topic filter must be a non-empty string")
    return f"$share/{group}/{topic_filter}"


def strip_shared(topic_filter: str) -> str:
    """Return the plain filter inside `$share/{group}/...`, or the filter unchanged."""
    if not topic_filter.startswith("$share/"):
        return topic_filter
    parts = topic_filter.split("/", 2)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise TopicError(f"shared subscription {topic_filter!r} must look like '$share/<group>/<filter>'")
    return parts[2]


def parse_topic(topic: str) -> tuple[str, str, MessageKind]:
    """Split an edge-sdk topic into `(prefix, vehicle_id, kind)`.

    Raises `TopicError` naming the topic when it has fewer than three levels
    or its last level is not a `MessageKind`.
    """
    if not isinstance(topic, str):
        raise TopicError(f"topic must be a string, got {type(topic).__name__}")
    parts = topic.rsplit("/", 2)
    if len(parts) != 3 or not all(parts):
        raise TopicError(f"topic {topic!r} is not '{{prefix}}/{{vehicle_id}}/{{kind}}'")
    prefix, vehicle_id, kind_name = parts
    try:
        kind = MessageKind(kind_name)
    except ValueError as exc:
        known = ", ".join(k.value for k in MessageKind)
        raise TopicError(f"topic {topic!r} ends in {kind_name!r}, which is not a message kind ({known})") from exc
    return prefix, vehicle_id, kind


def kind_of_topic(topic: str) -> MessageKind | None:
    """Return the message kind of an edge-sdk topic, or None for any other topic."""
    try:
        return parse_topic(topic)[2]
    except TopicError:
        return None
