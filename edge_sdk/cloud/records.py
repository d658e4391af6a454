"""Records the telemetry subscribers store and read back, and the columns drawn from a payload body.

The storage layer indexes a few headline columns (label, score and a
kind-specific set such as a result's latency) so queries and summaries need
not parse every JSON body. The extractors below are the one place that reads
those values out of a body. A field that is absent stays None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Kinds as they appear in the storage schema. The ingest subscriber maps each
# transport message kind onto one of these.
KIND_RESULT = "result"
KIND_EVENT = "event"
KIND_STATUS = "status"
KIND_ESCALATION = "escalation"
KIND_REPLY = "reply"
KIND_WORKER_STATUS = "worker_status"
KINDS = (KIND_RESULT, KIND_EVENT, KIND_STATUS, KIND_ESCALATION, KIND_REPLY, KIND_WORKER_STATUS)


@dataclass(frozen=True, slots=True)
class TelemetryRecord:
    """One valid message from the fleet, ready to store.

    `t_wall` is the sender's wall clock and `received_at` the subscriber's,
    both in seconds since the Unix epoch.
    """

    vehicle_id: str
    message_id: str
    kind: str
    topic: str
    t_wall: float
    received_at: float
    body: Mapping[str, Any]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read back from storage with its headline and kind-specific columns."""

    row_id: int
    vehicle_id: str
    message_id: str
    kind: str
    topic: str
    seq: int | None
    t_wall: float
    received_at: float
    label: str | None
    score: float | None
    details: Mapping[str, Any]
    body: Mapping[str, Any]

    @property
    def delivery_ms(self) -> float:
        """Time from the sender's clock to the subscriber's clock; includes any clock offset between them."""
        return (self.received_at - self.t_wall) * 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "topic": self.topic,
            "seq": self.seq,
            "t_wall": self.t_wall,
            "received_at": self.received_at,
            "label": self.label,
            "score": self.score,
            **{key: value for key, value in self.details.items()},
            "body": dict(self.body),
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A payload the subscriber could not store as a message, with the reason."""

    topic: str
    payload: bytes
    reason: str
    received_at: float
    vehicle_id: str | None = None
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for `Storage.query`; None means no filter. Times are seconds since the epoch on the sender's clock."""

    vehicle_id: str | None = None
    kind: str | None = None
    since: float | None = None
    until: float | None = None
    label: str | None = None
    limit: int | None = None
    ascending: bool = True


@dataclass(frozen=True, slots=True)
class DetailColumn:
    """A kind-specific column: its name, SQL type and how to read it from a body."""

    name: str
    sql_type: str
    extract: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class KindSchema:
    """The detail table of one message kind."""

    table: str
    columns: tuple[DetailColumn, ...] = field(default_factory=tuple)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _result_part(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the inference result inside a body.

    The daemon publishes an edge frame with its result under `result`, and a
    cloud reply merged into a frame (`source` = `cloud`) with the cloud's
    result under `cloud`. An escalation request carries `edge_result`. A bare
    `InferenceResult` dict is its own result.
    """
    keys = ("cloud", "result") if body.get("source") == "cloud" else ("result", "edge_result")
    for key in keys:
        inner = body.get(key)
        if isinstance(inner, Mapping):
            return inner
    return body


def top_prediction(result: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """Return (label, score) of the best classification or detection in a serialized InferenceResult."""
    best: tuple[str | None, float | None] = (None, None)
    for key in ("classifications", "detections"):
        entries = result.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            score = _number(entry.get("score"))
            if score is not None and (best[1] is None or score > best[1]):
                best = (_text(entry.get("label")), score)
    return best


def _inference_ms(body: Mapping[str, Any]) -> float | None:
    """Return the edge inference time of a frame result; None for a cloud result, whose frame was counted as an edge result."""
    if body.get("source") == "cloud":
        return None
    latency = body.get("latency_ms")
    if isinstance(latency, Mapping) and _number(latency.get("inference")) is not None:
        return _number(latency.get("inference"))
    timing = _result_part(body).get("timing_ms")
    if not isinstance(timing, Mapping):
        return None
    parts = [_number(timing.get(step)) for step in ("preprocess", "invoke", "postprocess")]
    known = [part for part in parts if part is not None]
    return sum(known) if known else None


def _image_bytes(body: Mapping[str, Any]) -> int | None:
    size = body.get("image_bytes")
    if isinstance(size, int):
        return size
    image = body.get("image_jpeg")
    if not isinstance(image, str):
        return None
    # Decoded size of base64 text: three bytes per four characters, less one per '=' of padding.
    return len(image) * 3 // 4 - image[-2:].count("=")


def _model_name(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    return _text(model.get("name")) if isinstance(model, Mapping) else None


def _reply_label(body: Mapping[str, Any]) -> tuple[str | None, float | None]:
    result = body.get("result")
    return top_prediction(result) if isinstance(result, Mapping) else (None, None)


KIND_SCHEMAS: dict[str, KindSchema] = {
    KIND_RESULT: KindSchema(
        "results",
        (
            DetailColumn("result_type", "TEXT", lambda body: _text(body.get("type"))),
            DetailColumn("source", "TEXT", lambda body: _text(body.get("source"))),
            DetailColumn("inference_ms", "REAL", _inference_ms),
            DetailColumn("rtt_ms", "REAL", lambda body: _number(body.get("rtt_ms"))),
        ),
    ),
    KIND_EVENT: KindSchema(
        "events",
        (
            DetailColumn("event_type", "TEXT", lambda body: _text(body.get("event")) or _text(body.get("type"))),
            DetailColumn("severity", "TEXT", lambda body: _text(body.get("severity"))),
        ),
    ),
    KIND_STATUS: KindSchema(
        "status",
        (DetailColumn("state", "TEXT", lambda body: _text(body.get("state"))),),
    ),
    KIND_ESCALATION: KindSchema(
        "escalations",
        (
            DetailColumn("correlation_id", "TEXT", lambda body: _text(body.get("correlation_id"))),
            DetailColumn("frame_id", "TEXT", lambda body: None if body.get("frame_id") is None else str(body.get("frame_id"))),
            DetailColumn("image_bytes", "INTEGER", _image_bytes),
        ),
    ),
    KIND_WORKER_STATUS: KindSchema(
        "worker_status",
        (
            DetailColumn("state", "TEXT", lambda body: _text(body.get("state"))),
            DetailColumn("requests", "INTEGER", lambda body: body.get("requests") if isinstance(body.get("requests"), int) else None),
            DetailColumn("queue_depth", "INTEGER", lambda body: body.get("queue_depth") if isinstance(body.get("queue_depth"), int) else None),
        ),
    ),
    KIND_REPLY: KindSchema(
        "replies",
        (
            DetailColumn("correlation_id", "TEXT", lambda body: _text(body.get("correlation_id"))),
            DetailColumn("worker_id", "TEXT", lambda body: _text(body.get("worker_id"))),
            DetailColumn("model_name", "TEXT", _model_name),
            DetailColumn("error", "TEXT", lambda body: _text(body.get("error")) or (str(body["error"]) if body.get("error") else None)),
        ),
    ),
}


def headline(kind: str, body: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """Return the (label, score) indexed for a message: a reply's cloud result, else the body's own result."""
    if kind == KIND_REPLY:
        return _reply_label(body)
    if kind == KIND_EVENT:
        return _text(body.get("label")), _number(body.get("score"))
    if kind in (KIND_RESULT, KIND_ESCALATION):
        return top_prediction(_result_part(body))
    return None, None


def details(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the kind-specific column values of a body."""
    schema = KIND_SCHEMAS.get(kind)
    if schema is None:
        return {}
    return {column.name: column.extract(body) for column in schema.columns}


def storable_body(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the body as stored: an escalation's image is replaced by its size, the image itself is not kept."""
    stored = dict(body)
    if kind == KIND_ESCALATION and "image_jpeg" in stored:
        stored.pop("image_jpeg")
        stored["image_bytes"] = _image_bytes(body)
    return stored
