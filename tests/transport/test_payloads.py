"""Envelope and escalation payload encoding and validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from edge_sdk.transport.errors import PayloadError
from edge_sdk.transport.payloads import (
    SCHEMA,
    EnvelopeBuilder,
    EscalationReply,
    EscalationRequest,
    ModelRef,
    escalation_properties,
    parse_envelope,
    parse_escalation_reply,
    parse_escalation_request,
    reply_target,
)
from edge_sdk.transport.topics import MessageKind

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"


def _valid_dict() -> dict[str, Any]:
    return EnvelopeBuilder("car-7").build(MessageKind.RESULTS, {"frame": 1}).to_dict()


def _request() -> EscalationRequest:
    return EscalationRequest(
        frame_id="cam0-17",
        source_id="cam0",
        capture_time=1764870000.5,
        edge_result={"task": "classification", "top": []},
        model=ModelRef("signs-int8", "1.2.0"),
        correlation_id="c0ffee",
        reply_to="fleet/car-7/escalation_replies",
        image_jpeg=JPEG,
    )


def test_envelope_round_trips_through_bytes() -> None:
    builder = EnvelopeBuilder("car-7")
    first = builder.build(MessageKind.RESULTS, {"frame": 1})
    second = builder.build(MessageKind.RESULTS, {"frame": 2})
    event = builder.build(MessageKind.EVENTS, {"type": "new"})
    decoded = parse_envelope(second.to_bytes())
    assert decoded == second
    assert decoded.schema == SCHEMA
    assert (first.seq, second.seq, event.seq) == (0, 1, 0)
    assert len({first.message_id, second.message_id, event.message_id}) == 3


def test_envelope_builders_get_distinct_message_ids() -> None:
    first_run = EnvelopeBuilder("car-7").build(MessageKind.RESULTS, {})
    second_run = EnvelopeBuilder("car-7").build(MessageKind.RESULTS, {})
    assert first_run.seq == second_run.seq
    assert first_run.message_id != second_run.message_id


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("schema"), "schema"),
        (lambda d: d.update(schema="edge-sdk/99"), "schema"),
        (lambda d: d.update(kind="photos"), "kind"),
        (lambda d: d.update(vehicle_id=""), "vehicle_id"),
        (lambda d: d.pop("message_id"), "message_id"),
        (lambda d: d.update(seq=-1), "seq"),
        (lambda d: d.update(seq=True), "seq"),
        (lambda d: d.update(t_wall="noon"), "t_wall"),
        (lambda d: d.update(t_mono="x"), "t_mono"),
        (lambda d: d.update(body=[1, 2]), "body"),
    ],
)
def test_parse_envelope_names_bad_field(mutate: Any, field: str) -> None:
    data = _valid_dict()
    mutate(data)
    with pytest.raises(PayloadError) as info:
        parse_envelope(json.dumps(data).encode())
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_parse_envelope_rejects_non_object(raw: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        parse_envelope(raw)
    assert info.value.field == "payload"


def test_parse_envelope_rejects_oversized_payload() -> None:
    with pytest.raises(PayloadError, match="limit of 100 bytes"):
        parse_envelope(b" " * 101 + json.dumps(_valid_dict()).encode(), max_bytes=100)


def test_parse_envelope_checks_expected_kind() -> None:
    with pytest.raises(PayloadError) as info:
        parse_envelope(json.dumps(_valid_dict()), expected_kind=MessageKind.EVENTS)
    assert info.value.field == "kind"


def test_envelope_rejects_unserializable_body() -> None:
    envelope = EnvelopeBuilder("car-7").build(MessageKind.RESULTS, {"value": float("nan")})
    with pytest.raises(PayloadError) as info:
        envelope.to_bytes()
    assert info.value.field == "body"


def test_escalation_request_round_trips() -> None:
    request = _request()
    envelope = EnvelopeBuilder("car-7").build(MessageKind.ESCALATIONS, request.to_body())
    decoded = parse_escalation_request(parse_envelope(envelope.to_bytes()).body)
    assert decoded == request
    assert decoded.image_jpeg == JPEG


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("image_jpeg", "%%%", "body.image_jpeg"),
        ("image_jpeg", base64.b64encode(b"PNG....").decode(), "body.image_jpeg"),
        ("correlation_id", "", "body.correlation_id"),
        ("reply_to", None, "body.reply_to"),
        ("capture_time", "yesterday", "body.capture_time"),
        ("edge_result", [], "body.edge_result"),
        ("model", {"name": "x"}, "body.model.version"),
        ("model", "x", "body.model"),
        ("frame_id", True, "body.frame_id"),
    ],
)
def test_parse_escalation_request_names_bad_field(key: str, value: Any, field: str) -> None:
    body = _request().to_body()
    body[key] = value
    with pytest.raises(PayloadError) as info:
        parse_escalation_request(body)
    assert info.value.field == field


def test_parse_escalation_request_names_missing_field() -> None:
    body = _request().to_body()
    del body["source_id"]
    with pytest.raises(PayloadError) as info:
        parse_escalation_request(body)
    assert info.value.field == "body.source_id"
    assert "missing" in str(info.value)


def test_escalation_reply_round_trips_result_and_error() -> None:
    model = ModelRef("signs-float", "2.0")
    answered = EscalationReply("c0ffee", model, "worker-1", result={"top": [1]})
    failed = EscalationReply("", model, "worker-1", error="image_jpeg is not a JPEG")
    assert parse_escalation_reply(answered.to_body()) == answered
    assert parse_escalation_reply(failed.to_body()) == failed


def test_parse_escalation_reply_needs_result_or_error() -> None:
    body = EscalationReply("c0ffee", ModelRef("m", "1"), "w", result={"a": 1}).to_body()
    body["result"] = None
    with pytest.raises(PayloadError) as info:
        parse_escalation_reply(body)
    assert info.value.field == "body.result"
    body["correlation_id"] = ""
    body["result"] = {"a": 1}
    with pytest.raises(PayloadError) as info:
        parse_escalation_reply(body)
    assert info.value.field == "body.correlation_id"


def test_reply_target_prefers_mqtt5_properties() -> None:
    request = _request()
    assert reply_target(request) == (request.reply_to, "c0ffee")
    properties = escalation_properties("from-props", "fleet/car-9/escalation_replies")
    assert reply_target(request, properties) == ("fleet/car-9/escalation_replies", "from-props")
