"""Check an incoming escalation request and find where to send the reply, even when the request is malformed.

Every request the MaaS worker rejects is rejected here with a `RequestError`
whose message names the field and the rule. The worker sends that message
back as the reply's `error`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from paho.mqtt.properties import Properties

from edge_sdk.cloud.errors import RequestError
from edge_sdk.transport.errors import PayloadError, TopicError
from edge_sdk.transport.payloads import EscalationRequest, parse_envelope, parse_escalation_request, reply_target
from edge_sdk.transport.topics import MessageKind, parse_topic

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Destination of a reply: the topic and the correlation id it must carry."""

    topic: str
    correlation_id: str


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A request that passed every check except the image decode, which runs on the batch thread."""

    request: EscalationRequest
    vehicle_id: str
    target: ReplyTarget


def check_reply_topic(topic: str) -> str:
    """Return `topic` when it is an edge-sdk escalation reply topic; raise RequestError otherwise.

    Replies go only to `{prefix}/{vehicle_id}/escalation_replies`, so a
    request cannot make the worker publish on another kind of topic.
    """
    try:
        kind = parse_topic(topic)[2]
    except TopicError as exc:
        raise RequestError(f"reply topic {topic!r} is invalid: {exc}") from exc
    if kind is not MessageKind.ESCALATION_REPLIES or "+" in topic or "#" in topic:
        raise RequestError(f"reply topic {topic!r} is not an escalation reply topic: use {{prefix}}/{{vehicle_id}}/escalation_replies")
    return topic


def check_request(topic: str, payload: bytes, properties: Properties | None, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> CheckedRequest:
    """Validate the envelope and body of one escalation request; raise RequestError naming what is wrong."""
    try:
        _, vehicle_id, kind = parse_topic(topic)
    except TopicError as exc:
        raise RequestError(f"request topic {topic!r} is invalid: {exc}") from exc
    if len(payload) > max_bytes:
        raise RequestError(f"request is {len(payload)} bytes, above the worker's limit of {max_bytes} bytes: send a smaller JPEG")
    try:
        envelope = parse_envelope(payload, expected_kind=MessageKind.ESCALATIONS, max_bytes=max_bytes)
        if envelope.vehicle_id != vehicle_id:
            raise PayloadError("vehicle_id", f"is {envelope.vehicle_id!r} but the request came on {topic!r}")
        request = parse_escalation_request(envelope.body)
    except PayloadError as exc:
        raise RequestError(str(exc)) from exc
    reply_topic, correlation_id = reply_target(request, properties)
    return CheckedRequest(request=request, vehicle_id=vehicle_id, target=ReplyTarget(check_reply_topic(reply_topic), correlation_id))


def salvage_reply_target(payload: bytes, properties: Properties | None) -> ReplyTarget | None:
    """Find a reply topic and correlation id in a request that failed its checks, or None when it names no usable topic.

    MQTT 5 properties come first; otherwise `body.reply_to` and
    `body.correlation_id` are read from whatever JSON the payload holds.
    """
    topic = getattr(properties, "ResponseTopic", None) if properties is not None else None
    data = getattr(properties, "CorrelationData", None) if properties is not None else None
    correlation_id = bytes(data).decode("utf-8", errors="replace") if data else None
    body = _loose_body(payload)
    if topic is None and isinstance(body.get("reply_to"), str):
        topic = body["reply_to"]
    if correlation_id is None and isinstance(body.get("correlation_id"), str):
        correlation_id = body["correlation_id"]
    if not topic:
        return None
    try:
        return ReplyTarget(check_reply_topic(topic), correlation_id or "")
    except RequestError as exc:
        logger.warning("cannot reply to a rejected request: %s", exc)
        return None


def _loose_body(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    body = data.get("body") if isinstance(data, dict) else None
    return body if isinstance(body, dict) else {}


# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) from a JPEG's start-of-frame header without decoding it, or None when none is found."""
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return width, height
        position += 2 + length
    return None


def decode_jpeg(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode JPEG bytes to a BGR uint8 image; raise RequestError when they do not decode or the image is too large.

    The size is read from the header first, so a small file claiming a huge
    image is rejected before any pixel is decoded.
    """
    size = jpeg_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise RequestError(
            f"image is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, above the limit of {max_pixels}: downscale the frame before escalating"
        )
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or size is None:
        raise RequestError(f"body.image_jpeg ({len(data)} bytes) does not decode as a JPEG image: send the frame encoded with cv2.imencode('.jpg')")
    return image
