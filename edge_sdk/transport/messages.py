"""Records the MQTT client hands to its callers: received messages and acknowledged deliveries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A received message handed to a subscription handler.

    With `MqttConfig.manual_ack` the handler, or the code it hands the message
    to, must call `ack()` once the message is safely processed. Without it,
    paho acknowledges the message when the handler returns and `ack()` does
    nothing.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    properties: Properties | None = None
    _ack: Callable[[], None] | None = field(default=None, repr=False)

    def ack(self) -> None:
        if self._ack is not None:
            self._ack()


MessageHandler = Callable[[InboundMessage], None]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A spooled message the broker acknowledged.

    `latency_s` runs from the spool `put` to the acknowledgement, including
    time spent queued during an outage. `rtt_s` runs from the hand-over to
    paho to the acknowledgement.
    """

    spool_id: int
    topic: str
    kind: str
    priority: int
    created: float
    latency_s: float
    rtt_s: float
