"""Topic builders and parser."""

from __future__ import annotations

import pytest

from edge_sdk.transport.errors import TopicError
from edge_sdk.transport.topics import (
    MessageKind,
    Priority,
    Topics,
    default_priority,
    fleet_filter,
    kind_of_topic,
    parse_topic,
    shared_filter,
    strip_shared,
    worker_status_topic,
)


def test_topics_build_per_vehicle_layout() -> None:
    topics = Topics("fleet/eu", "car-7")
    assert topics.results == "fleet/eu/car-7/results"
    assert topics.events == "fleet/eu/car-7/events"
    assert topics.status == "fleet/eu/car-7/status"
    assert topics.escalations == "fleet/eu/car-7/escalations"
    assert topics.escalation_replies == "fleet/eu/car-7/escalation_replies"


@pytest.mark.parametrize("kind", list(MessageKind))
def test_parse_topic_round_trips_every_kind(kind: MessageKind) -> None:
    topic = Topics("fleet/eu", "car-7").for_kind(kind)
    assert parse_topic(topic) == ("fleet/eu", "car-7", kind)


@pytest.mark.parametrize("vehicle_id", ["", "a/b", "car+", "car#", "$SYS"])
def test_topics_reject_bad_vehicle_id(vehicle_id: str) -> None:
    with pytest.raises(TopicError, match="vehicle id"):
        Topics("fleet", vehicle_id)


@pytest.mark.parametrize("prefix", ["", "fleet/", "/fleet", "a//b", "fleet/+", "#"])
def test_topics_reject_bad_prefix(prefix: str) -> None:
    with pytest.raises(TopicError, match="prefix"):
        Topics(prefix, "car-7")


@pytest.mark.parametrize("topic", ["fleet/car-7/unknown", "car-7/results", "results", "fleet//results"])
def test_parse_topic_rejects_foreign_topic(topic: str) -> None:
    with pytest.raises(TopicError, match="topic"):
        parse_topic(topic)
    assert kind_of_topic(topic) is None


def test_fleet_and_shared_filters() -> None:
    assert fleet_filter("fleet", MessageKind.RESULTS) == "fleet/+/results"
    assert fleet_filter("fleet") == "fleet/+/+"
    shared = shared_filter("maas", fleet_filter("fleet", MessageKind.ESCALATIONS))
    assert shared == "$share/maas/fleet/+/escalations"
    assert strip_shared(shared) == "fleet/+/escalations"
    assert strip_shared("fleet/+/results") == "fleet/+/results"
    with pytest.raises(TopicError, match="share"):
        strip_shared("$share/onlygroup")


def test_worker_status_topic_parses_as_worker_status() -> None:
    topic = worker_status_topic("fleet", "worker-1")
    assert parse_topic(topic) == ("fleet", "worker-1", MessageKind.WORKER_STATUS)


def test_priority_orders_events_before_results_before_frames() -> None:
    assert default_priority(MessageKind.EVENTS) > default_priority(MessageKind.RESULTS)
    assert default_priority(MessageKind.RESULTS) > default_priority(MessageKind.ESCALATIONS)
    assert default_priority(MessageKind.ESCALATIONS) == Priority.FRAME
    assert default_priority(None) == Priority.RESULT
