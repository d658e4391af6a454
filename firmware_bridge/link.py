"""Serial link base: open through pyserial URLs, a reader thread, link-lost detection and reopen.

Every link opens with `serial.serial_for_url`, so device paths,
/dev/serial/by-id symlinks, `loop://`, `socket://` and `rfc2217://` all work.
`exclusive=True` requests an advisory lock (flock) from pyserial on POSIX
device paths. URL handlers without a lock ignore it. The reader thread feeds a
`DelimitedFramer` and hands each complete frame to `handle_frame`, which
subclasses implement. A read or open failure marks the link lost; the thread
closes the port and reopens it with exponential backoff until `stop()`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections.abc import Callable
from typing import Any

import serial

from firmware_bridge.errors import BridgeConfigError, ChecksumError, FrameError, LinkClosedError, LinkError, check_number
from firmware_bridge.framing import DelimitedFramer, FrameCounters

logger = logging.getLogger(__name__)


class LinkState(str, enum.Enum):
    """Lifecycle of a link as reported in `status()`."""

    CLOSED = "closed"
    CONNECTING = "connecting"
    OPEN = "open"
    LOST = "lost"


@dataclasses.dataclass(frozen=True, slots=True)
class LinkSettings:
    """How to open one serial link.

    Attributes:
        url: pyserial URL or device path, e.g. /dev/ttyUSB0, loop://, socket://127.0.0.1:7000.
        baudrate: serial speed in bit/s; ignored by URL handlers without one.
        exclusive: request an exclusive lock where the platform supports it.
        read_timeout_s: maximum time a read blocks, which bounds how long `stop()` takes.
        reconnect_initial_s: first wait before reopening a lost link, in seconds.
        reconnect_max_s: cap of the doubling reopen wait, in seconds.
    """

    url: str
    baudrate: int = 115200
    exclusive: bool = True
    read_timeout_s: float = 0.05
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise BridgeConfigError(f"serial url {self.url!r} is invalid: give a device path or a pyserial URL such as loop://")
        check_number(self.baudrate, f"baudrate for {self.url}", positive=True, integer=True)
        check_number(self.read_timeout_s, f"read_timeout_s for {self.url}", positive=True)
        check_number(self.reconnect_initial_s, f"reconnect_initial_s for {self.url}", positive=True)
        check_number(self.reconnect_max_s, f"reconnect_max_s for {self.url}", positive=True)
        if not isinstance(self.exclusive, bool):
            raise BridgeConfigError(f"exclusive {self.exclusive!r} for {self.url} is invalid: give true or false")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise BridgeConfigError(
                f"reconnect backoff {self.reconnect_initial_s}..{self.reconnect_max_s} s for {self.url} is invalid: "
                "the initial wait must not be above the maximum"
            )


@dataclasses.dataclass(slots=True)
class LinkEvents:
    """Counts of lifecycle events of one link."""

    opens: int = 0
    losses: int = 0
    open_failures: int = 0
    handler_errors: int = 0
    last_error: str | None = None


class SerialLink:
    """Base of the GPS, SLCAN and MCU links: owns the port, the reader thread and the counters.

    Subclasses implement `handle_frame` (called on the reader thread for each
    complete frame) and may override `on_open` (called on the reader thread
    after every successful open, before the first read).
    """

    def __init__(self, name: str, settings: LinkSettings, framer: DelimitedFramer) -> None:
        self.name = name
        self.settings = settings
        self.framer = framer
        self.events = LinkEvents()
        self._state = LinkState.CLOSED
        self._port: Any = None
        self._write_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._open_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    @property
    def counters(self) -> FrameCounters:
        return self.framer.counters

    @property
    def state(self) -> LinkState:
        return self._state

    def start(self) -> None:
        """Start the reader thread; it opens the port and keeps reopening it until `stop()`."""
        if self._thread is not None:
            return
        self._stop_event.clear()
        self._set_state(LinkState.CONNECTING)
        self._thread = threading.Thread(target=self._run, name=f"firmware_bridge-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reader thread and close the port; safe to call twice."""
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.error("link %s: reader thread did not stop within %.1f s; it is left running as a daemon thread", self.name, timeout)
        self._close_port()
        self._set_state(LinkState.CLOSED)

    close = stop

    def __enter__(self) -> SerialLink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_until(self, predicate: Callable[[SerialLink], bool], timeout: float) -> bool:
        """Block until `predicate(link)` is true or `timeout` seconds passed; it is re-checked at every state change."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def _set_state(self, state: LinkState) -> None:
        with self._changed:
            self._state = state
            self._changed.notify_all()

    def wait_open(self, timeout: float) -> bool:
        """Block until the port is open (True) or `timeout` seconds passed (False)."""
        return self._open_event.wait(timeout)

    def write(self, data: bytes) -> None:
        """Write `data` to the port; raises LinkClosedError while the link is not open."""
        port = self._port
        if port is None or self._state is not LinkState.OPEN:
            raise LinkClosedError(f"link {self.name} ({self.settings.url}) is {self._state.value}: wait for it to open before writing")
        try:
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"writing {len(data)} bytes to link {self.name} ({self.settings.url}) failed: {exc}") from exc

    def status(self) -> dict[str, Any]:
        """Return the link state and counters as a JSON-ready dict."""
        return {
            "name": self.name,
            "url": self.settings.url,
            "state": self._state.value,
            "opens": self.events.opens,
            "losses": self.events.losses,
            "open_failures": self.events.open_failures,
            "handler_errors": self.events.handler_errors,
            "last_error": self.events.last_error,
            **self.counters.as_dict(),
        }

    def handle_frame(self, frame: bytes) -> None:
        """Parse one complete frame; raise a FrameError subclass when it is malformed."""
        raise NotImplementedError

    def on_open(self) -> None:
        """Hook run on the reader thread after each successful open."""

    def on_close(self) -> None:
        """Hook run whenever the port is closed, after a loss or on `stop()`."""

    def _run(self) -> None:
        delay = self.settings.reconnect_initial_s
        while not self._stop_event.is_set():
            if self._port is None:
                if self._open_port() and self._run_on_open():
                    delay = self.settings.reconnect_initial_s
                else:
                    self._stop_event.wait(delay)
                    delay = min(delay * 2, self.settings.reconnect_max_s)
                continue
            try:
                self.pump_once()
            except (serial.SerialException, OSError) as exc:
                self._mark_lost(exc)

    def pump_once(self) -> None:
        """Read what the port has (waiting at most `read_timeout_s`) and dispatch complete frames."""
        port = self._port
        if port is None:
            raise LinkClosedError(f"link {self.name} ({self.settings.url}) is not open")
        data = port.read(max(1, port.in_waiting))
        if data:
            self.feed(data)

    def feed(self, data: bytes) -> None:
        """Frame and dispatch received bytes; malformed frames and failing callbacks are counted, not raised."""
        for frame in self.framer.feed(data):
            self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        try:
            self.handle_frame(frame)
        except ChecksumError as exc:
            self.counters.checksum_errors += 1
            self._log_repeated("checksum error", self.counters.checksum_errors, exc)
        except FrameError as exc:
            self.counters.frame_errors += 1
            self._log_repeated("invalid frame", self.counters.frame_errors, exc)
        except Exception as exc:  # a consumer callback failed: count it and keep reading
            self.events.handler_errors += 1
            if _is_power_of_two(self.events.handler_errors):
                logger.exception("link %s: frame handler failed (%d so far): %s", self.name, self.events.handler_errors, exc)

    def _log_repeated(self, what: str, count: int, exc: Exception) -> None:
        # Log the 1st, 2nd, 4th, 8th... occurrence so a noisy line cannot flood the log.
        if _is_power_of_two(count):
            logger.warning("link %s: %s skipped (%d so far): %s", self.name, what, count, exc)

    def _open_port(self) -> bool:
        if self._state is not LinkState.LOST:
            self._set_state(LinkState.CONNECTING)
        try:
            port = serial.serial_for_url(
                self.settings.url,
                baudrate=self.settings.baudrate,
                timeout=self.settings.read_timeout_s,
                exclusive=self.settings.exclusive,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self.events.open_failures += 1
            self.events.last_error = str(exc)
            if _is_power_of_two(self.events.open_failures):
                logger.warning("link %s: opening %s failed (attempt %d), retrying with backoff: %s",
                               self.name, self.settings.url, self.events.open_failures, exc)
            return False
        self.framer.reset()
        self._port = port
        self.events.opens += 1
        self._open_event.set()
        self._set_state(LinkState.OPEN)
        logger.info("link %s: opened %s", self.name, self.settings.url)
        return True

    def _run_on_open(self) -> bool:
        # Any setup failure closes the port, so the setup is retried with backoff after the reopen.
        try:
            self.on_open()
        except (serial.SerialException, OSError) as exc:
            self._mark_lost(exc)
            return False
        except Exception as exc:  # a failed setup step must not kill the reader thread
            logger.error("link %s: setup after open failed: %s", self.name, exc)
            self._mark_lost(exc)
            return False
        return True

    def _mark_lost(self, exc: BaseException) -> None:
        if self._stop_event.is_set():
            return
        self.events.losses += 1
        self.events.last_error = str(exc)
        logger.warning("link %s: %s lost (%s); reopening with backoff", self.name, self.settings.url, exc)
        self._close_port()
        self._set_state(LinkState.LOST)

    def _close_port(self) -> None:
        port, self._port = self._port, None
        self._open_event.clear()
        self.on_close()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                logger.debug("link %s: closing %s failed: %s", self.name, self.settings.url, exc)


def _is_power_of_two(count: int) -> bool:
    return count > 0 and count & (count - 1) == 0

