"""JSON payloads: the envelope every message travels in, and the escalation bodies.

Every payload is one UTF-8 JSON object (see docs/transport.md for examples)::

    {"schema": "edge-sdk/1", "kind": "results", "vehicle_id": "car-7",
     "message_id": "3f2a9c1e04b7d5a1.results.42", "seq": 42,
     "t_wall": 1764870000.123, "t_mono": 5321.004, "body": {...}}

- `message_id` is unique per sender: delivery is at least once, so
  subscribers drop a message whose id they have already stored.
- `seq` counts up per sender run and kind, from 0; a restarted sender starts
  again at 0 with a new random `boot_id` inside its message ids.
- `t_wall` is Unix time in seconds, `t_mono` the sender's monotonic clock in
  seconds (optional, only comparable within one sender run).

`parse_envelope` raises `PayloadError` whose `field` names the offending key.
Escalation requests and replies are bodies of `escalations` and
`escalation_replies` envelopes; MQTT 5 senders also set the response topic
and correlation data properties (`escalation_properties`), but the same
fields are always in the payload, so MQTT 3.1.1 works unchanged.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_sdk.transport.errors import PayloadError
from edge_sdk.transport.topics import MessageKind

SCHEMA = "edge-sdk/1"
DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
_JPEG_MAGIC = b"\xff\xd8"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded message; `body` is the kind-specific JSON object."""

    kind: MessageKind
    vehicle_id: str
    message_id: str
    seq: int
    t_wall: float
    body: dict[str, Any]
    t_mono: float | None = None
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": self.schema,
            "kind": self.kind.value,
            "vehicle_id": self.vehicle_id,
            "message_id": self.message_id,
            "seq": self.seq,
            "t_wall": self.t_wall,
        }
        if self.t_mono is not None:
            data["t_mono"] = self.t_mono
        data["body"] = self.body
        return data

    def to_bytes(self) -> bytes:
        """Encode as compact UTF-8 JSON; raises `PayloadError` when the body is not JSON-serializable."""
        try:
            return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise PayloadError("body", f"cannot be encoded as JSON ({exc}): use plain dicts, lists, str, int, finite floats") from exc


def new_boot_id() -> str:
    """Return a random 16-hex-digit id that keeps message ids unique across sender restarts."""
    return secrets.token_hex(8)


def make_envelope(
    kind: MessageKind,
    vehicle_id: str,
    body: Mapping[str, Any],
    *,
    seq: int,
    message_id: str,
    t_wall: float | None = None,
    t_mono: float | None = None,
) -> Envelope:
    """Build and validate an envelope; `t_wall` defaults to now."""
    envelope = Envelope(
        kind=MessageKind(kind),
        vehicle_id=vehicle_id,
        message_id=message_id,
        seq=seq,
        t_wall=time.time() if t_wall is None else t_wall,
        body=dict(body),
        t_mono=t_mono,
    )
    _validate(envelope.to_dict())
    return envelope


class EnvelopeBuilder:
    """Stamp outgoing messages of one sender with message ids and per-kind sequence numbers.

    Thread-safe. Message ids look like `{boot_id}.{kind}.{seq}`; treat them as
    opaque strings.
    """

    def __init__(self, vehicle_id: str, *, boot_id: str | None = None) -> None:
        self.vehicle_id = vehicle_id
        self.boot_id = boot_id or new_boot_id()
        self._counters: dict[MessageKind, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def _next_seq(self, kind: MessageKind) -> int:
        with self._lock:
            counter = self._counters.setdefault(kind, itertools.count())
            return next(counter)

    def build(self, kind: MessageKind, body: Mapping[str, Any], *, t_wall: float | None = None, t_mono: float | None = None) -> Envelope:
        kind = MessageKind(kind)
        seq = self._next_seq(kind)
        return make_envelope(
            kind,
            self.vehicle_id,
            body,
            seq=seq,
            message_id=f"{self.boot_id}.{kind.value}.{seq}",
            t_wall=t_wall,
            t_mono=time.monotonic() if t_mono is None else t_mono,
        )


# --- decoding -------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(data: Mapping[str, Any], key: str, path: str = "") -> Any:
    if key not in data:
        raise PayloadError(f"{path}{key}", "missing")
    return data[key]


def _require_str(data: Mapping[str, Any], key: str, path: str = "", *, allow_empty: bool = False) -> str:
    value = _require(data, key, path)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise PayloadError(f"{path}{key}", f"must be a non-empty string, got {value!r:.80}")
    return value


def _require_number(data: Mapping[str, Any], key: str, path: str = "") -> float:
    value = _require(data, key, path)
    if not _is_number(value):
        raise PayloadError(f"{path}{key}", f"must be a finite number, got {value!r:.80}")
    return float(value)


def _require_dict(data: Mapping[str, Any], key: str, path: str = "") -> dict[str, Any]:
    value = _require(data, key, path)
    if not isinstance(value, dict):
        raise PayloadError(f"{path}{key}", f"must be a JSON object, got {type(value).__name__}")
    return value


def _validate(data: Mapping[str, Any]) -> Envelope:
    schema = _require_str(data, "schema")
    if schema != SCHEMA:
        raise PayloadError("schema", f"is {schema!r} but this reader understands {SCHEMA!r}: upgrade the reader or the sender")
    kind_name = _require_str(data, "kind")
    try:
        kind = MessageKind(kind_name)
    except ValueError as exc:
        known = ", ".join(k.value for k in MessageKind)
        raise PayloadError("kind", f"{kind_name!r} is not one of {known}") from exc
    seq = _require(data, "seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise PayloadError("seq", f"must be an integer >= 0, got {seq!r:.80}")
    t_mono = data.get("t_mono")
    if t_mono is not None and not _is_number(t_mono):
        raise PayloadError("t_mono", f"must be a finite number or absent, got {t_mono!r:.80}")
    return Envelope(
        kind=kind,
        vehicle_id=_require_str(data, "vehicle_id"),
        message_id=_require_str(data, "message_id"),
        seq=seq,
        t_wall=_require_number(data, "t_wall"),
        body=_require_dict(data, "body"),
        t_mono=None if t_mono is None else float(t_mono),
        schema=schema,
    )


def parse_envelope(
    payload: bytes | bytearray | memoryview | str,
    *,
    expected_kind: MessageKind | None = None,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Envelope:
    """Decode and validate one payload; raises `PayloadError` naming the field that is wrong."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > max_bytes:
        raise PayloadError("payload", f"is {len(raw)} bytes, above the limit of {max_bytes} bytes: send a smaller image or raise max_bytes")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise PayloadError("payload", f"is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise PayloadError("payload", f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise PayloadError("payload", f"must be a JSON object, got {type(data).__name__}")
    envelope = _validate(data)
    if expected_kind is not None and envelope.kind is not MessageKind(expected_kind):
        raise PayloadError("kind", f"is {envelope.kind.value!r} but {MessageKind(expected_kind).value!r} was expected on this topic")
    return envelope


# --- presence (status topic) ---------------------------------------------------------------------

ONLINE = "online"
OFFLINE = "offline"


def presence_body(state: str, **extra: Any) -> dict[str, Any]:
    """Body of a status message: `{"state": "online"|"offline", ...}`; health records add their fields."""
    if state not in (ONLINE, OFFLINE):
        raise PayloadError("body.state", f"must be {ONLINE!r} or {OFFLINE!r}, got {state!r}")
    return {"state": state, **extra}


# --- escalation request / reply ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Name and version of the model that produced a result."""

    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> ModelRef:
        if not isinstance(data, dict):
            raise PayloadError(path.rstrip("."), f"must be a JSON object with name and version, got {type(data).__name__}")
        return cls(name=_require_str(data, "name", path), version=_require_str(data, "version", path))


@dataclass(frozen=True, slots=True)
class EscalationRequest:
    """A frame sent to the cloud so a heavier model processes it again.

    `capture_time` is Unix time in seconds; `edge_result` is the vehicle's
    result as a plain dict (`InferenceResult.to_dict()`); `reply_to` is the
    topic the reply must go to.
    """

    frame_id: str
    source_id: str
    capture_time: float
    edge_result: dict[str, Any]
    model: ModelRef
    correlation_id: str
    reply_to: str
    image_jpeg: bytes = field(repr=False)

    def to_body(self) -> dict[str, Any]:
        return {
            "frame_id": self.frame_id,
            "source_id": self.source_id,
            "capture_time": self.capture_time,
            "edge_result": self.edge_result,
            "model": self.model.to_dict(),
            "correlation_id": self.correlation_id,
            "reply_to": self.reply_to,
            "image_jpeg": base64.b64encode(self.image_jpeg).decode("ascii"),
        }


def parse_escalation_request(body: Mapping[str, Any]) -> EscalationRequest:
    """Validate an `escalations` body; `PayloadError.field` is `body.<key>`."""
    path = "body."
    encoded = _require_str(body, "image_jpeg", path)
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError("body.image_jpeg", f"is not valid base64 ({exc})") from exc
    if not image.startswith(_JPEG_MAGIC):
        raise PayloadError("body.image_jpeg", f"does not start with the JPEG marker FF D8 (starts with {image[:4].hex(' ') or 'nothing'})")
    frame_id = _require(body, "frame_id", path)
    if not isinstance(frame_id, (str, int)) or isinstance(frame_id, bool) or frame_id == "":
        raise PayloadError("body.frame_id", f"must be a non-empty string or an integer, got {frame_id!r:.80}")
    return EscalationRequest(
        frame_id=str(frame_id),
        source_id=_require_str(body, "source_id", path),
        capture_time=_require_number(body, "capture_time", path),
        edge_result=_require_dict(body, "edge_result", path),
        model=ModelRef.from_dict(_require(body, "model", path), "body.model."),
        correlation_id=_require_str(body, "correlation_id", path),
        reply_to=_require_str(body, "reply_to", path),
        image_jpeg=image,
    )


@dataclass(frozen=True, slots=True)
class EscalationReply:
    """The cloud's reply to one `EscalationRequest`.

    Exactly one of `result` (the heavier model's result dict) and `error`
    (a sentence saying why the request failed) is set.
    `correlation_id` may be empty only in an error reply to a request that
    carried none.
    """

    correlation_id: str
    model: ModelRef
    worker_id: str
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "correlation_id": self.correlation_id,
            "result": self.result,
            "model": self.model.to_dict(),
            "worker_id": self.worker_id,
        }
        if self.error is not None:
            body["error"] = self.error
        return body


def parse_escalation_reply(body: Mapping[str, Any]) -> EscalationReply:
    """Validate an `escalation_replies` body; `PayloadError.field` is `body.<key>`."""
    path = "body."
    error = body.get("error")
    if error is not None and (not isinstance(error, str) or not error):
        raise PayloadError("body.error", f"must be a non-empty string or absent, got {error!r:.80}")
    result = _require(body, "result", path)
    if result is not None and not isinstance(result, dict):
        raise PayloadError("body.result", f"must be a JSON object or null, got {type(result).__name__}")
    if (result is None) == (error is None):
        raise PayloadError("body.result", "exactly one of result and error must be set")
    correlation_id = _require_str(body, "correlation_id", path, allow_empty=error is not None)
    return EscalationReply(
        correlation_id=correlation_id,
        model=ModelRef.from_dict(_require(body, "model", path), "body.model."),
        worker_id=_require_str(body, "worker_id", path),
        result=result,
        error=error,
    )


def escalation_properties(correlation_id: str, reply_to: str | None = None) -> Properties:
    """MQTT 5 PUBLISH properties: correlation data and, for requests, the response topic."""
    properties = Properties(PacketTypes.PUBLISH)
    properties.CorrelationData = correlation_id.encode()
    if reply_to is not None:
        properties.ResponseTopic = reply_to
    properties.ContentType = "application/json"
    return properties


def reply_target(request: EscalationRequest, properties: Properties | None = None) -> tuple[str, str]:
    """Return `(reply topic, correlation id)`, preferring the MQTT 5 properties when a request carries them."""
    topic = request.reply_to
    correlation_id = request.correlation_id
    if properties is not None:
        topic = getattr(properties, "ResponseTopic", None) or topic
        data = getattr(properties, "CorrelationData", None)
        if data:
            correlation_id = bytes(data).decode("utf-8", errors="replace")
    return topic, correlation_id
