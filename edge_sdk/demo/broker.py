"""An in-process MQTT broker (amqtt) on the loopback interface, for the demo only.

What amqtt 0.12.1 does, checked with paho-mqtt 2.2 clients on 127.0.0.1
(`tests/demo/test_broker.py` keeps these checks):

- MQTT 3.1.1 only: an MQTT 5 CONNECT gets "Unsupported protocol version", so
  every demo client connects with protocol 3.1.1.
- QoS 0, 1 and 2, retained messages and the last will work.
- Persistent sessions queue QoS 1/2 messages for an offline client only when
  the client is not anonymous. The demo broker therefore rejects anonymous
  clients and every demo client sends a user name (any password).
- No shared subscriptions: `$share/<group>/...` is taken as a plain topic
  filter that matches nothing, so the demo runs one MaaS worker with a plain
  subscription.
- On every CONNECT amqtt sends the connecting client the retained messages
  that match any filter any client has subscribed to, not only its own.
  Clients must ignore messages on topics they did not subscribe to.
- amqtt walks its subscription table across awaits: when one client connects
  (or a message is broadcast) while another subscribes to a new filter, the
  walk fails with "dictionary changed size during iteration" and the
  connecting client is dropped. `SnapshotSubscriptions` makes each walk run
  over a copy of the table.

For anything beyond the demo use Mosquitto or another full MQTT 5 broker
(`edge-sdk demo --broker URL`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType

from edge_sdk.errors import EdgeSdkError

logger = logging.getLogger(__name__)

DEMO_USERNAME = "edge-sdk-demo"
BROKER_THREAD_NAME = "demo-broker"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class BrokerError(EdgeSdkError, RuntimeError):
    """The embedded broker could not start or stop."""


class SnapshotSubscriptions(dict):
    """amqtt's subscription table, iterated over a copy of its keys and items.

    amqtt 0.12.1 loops over `Broker._subscriptions` while awaiting inside the
    loop (retained messages on CONNECT, filter checks while broadcasting), so
    a SUBSCRIBE handled in between changes the dict mid-loop. A copy per walk
    costs one list per CONNECT or broadcast, small at demo scale.
    Lookups, inserts and deletes still go to the live table.
    """

    def __iter__(self):
        return iter(list(dict.keys(self)))

    def items(self):
        return list(dict.items(self))


def free_loopback_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """amqtt running on its own event loop thread, bound to 127.0.0.1 only.

    `start()` returns once the listener accepts connections; `stop()` shuts the
    broker down and joins the thread (idempotent).
    """

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_loopback_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def config(self) -> dict:
        """Return the amqtt configuration: one TCP listener on loopback, named clients only, no $SYS topics."""
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            import amqtt.broker  # noqa: F401
        except ImportError as exc:
            raise BrokerError("amqtt is not installed: install the demo extra (pip install 'edge-sdk[demo]') or pass --broker URL") from exc

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=BROKER_THREAD_NAME, daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise BrokerError(f"the embedded broker did not start on {self.url} within {START_TIMEOUT_S:.0f} s: pass --broker URL to use another broker")
        if self._start_error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
            raise BrokerError(f"the embedded broker failed to start on {self.url}: {self._start_error}") from self._start_error
        logger.info("embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s", self.url)

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)

        async def start_broker() -> None:
            self._broker = Broker(self.config(), loop=loop)
            if isinstance(getattr(self._broker, "_subscriptions", None), dict):
                self._broker._subscriptions = SnapshotSubscriptions()
            else:
                logger.warning("amqtt has no Broker._subscriptions table; a SUBSCRIBE during a CONNECT may drop that client")
            await self._broker.start()

        try:
            loop.run_until_complete(start_broker())
        except Exception as exc:  # amqtt raises its own and OSError types; all mean "did not start"
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        self._thread = None
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                future.result(STOP_TIMEOUT_S)
            except Exception as exc:  # shutting down anyway: report and carry on
                logger.warning("embedded broker shutdown failed: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            logger.warning("embedded broker thread did not stop within %.0f s", STOP_TIMEOUT_S)
        else:
            logger.info("embedded MQTT broker on %s stopped", self.url)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
