"""Property tests: any JSON body round-trips, and no input makes the parsers raise anything but PayloadError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.transport.errors import PayloadError
from edge_sdk.transport.payloads import EnvelopeBuilder, parse_envelope, parse_escalation_reply, parse_escalation_request
from edge_sdk.transport.topics import MessageKind

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)
BODIES = st.dictionaries(st.text(), JSON_VALUES, max_size=6)


@settings(max_examples=60, deadline=None)
@given(body=BODIES, kind=st.sampled_from(list(MessageKind)))
def test_envelope_round_trips_any_json_body(body: dict[str, Any], kind: MessageKind) -> None:
    envelope = EnvelopeBuilder("car-7").build(kind, body)
    assert parse_envelope(envelope.to_bytes()) == envelope


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_parse_envelope_random_bytes_raise_payload_error(raw: bytes) -> None:
    try:
        parse_envelope(raw)
    except PayloadError as exc:
        assert exc.field
    else:
        raise AssertionError(f"random bytes parsed as an envelope: {raw!r}")


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["schema", "kind", "vehicle_id", "message_id", "seq", "t_wall", "t_mono", "body"]), JSON_VALUES))
def test_parse_envelope_random_fields_raise_payload_error(data: dict[str, Any]) -> None:
    try:
        parse_envelope(json.dumps(data))
    except PayloadError as exc:
        assert exc.field in {"schema", "kind", "vehicle_id", "message_id", "seq", "t_wall", "t_mono", "body"}


@settings(max_examples=100, deadline=None)
@given(body=BODIES)
def test_escalation_parsers_raise_only_payload_error(body: dict[str, Any]) -> None:
    for parser in (parse_escalation_request, parse_escalation_reply):
        try:
            parser(body)
        except PayloadError as exc:
            assert exc.field.startswith("body.")
