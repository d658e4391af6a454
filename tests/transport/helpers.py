"""Test helpers: a subscriber that collects decoded envelopes, and event-based waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge_sdk.transport.client import InboundMessage, MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import Envelope, parse_envelope

FAST_RECONNECT = {"reconnect_min_delay": 0.1, "reconnect_max_delay": 0.5}


class Collector:
    """Subscriber collecting every envelope it receives, in arrival order."""

    def __init__(self, url: str, topic_filter: str, *, client_id: str = "collector", **config: object) -> None:
        self.envelopes: list[Envelope] = []
        self.raw: list[InboundMessage] = []
        self._changed = threading.Condition()
        self.client = MqttClient(MqttConfig.from_url(url, client_id=client_id, **{**FAST_RECONNECT, **config}))
        self.client.subscribe(topic_filter, self._on_message, qos=1)

    def _on_message(self, message: InboundMessage) -> None:
        with self._changed:
            self.raw.append(message)
            self.envelopes.append(parse_envelope(message.payload))
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Envelope]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.envelopes):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def __enter__(self) -> Collector:
        self.client.start()
        assert self.client.wait_ready(10), "collector did not connect and subscribe within 10 s"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.client.stop(5), f"collector {self.client.config.client_id!r} did not stop cleanly"
        assert self.client._network_thread is not None and not self.client._network_thread.is_alive()
