"""Micro-batching: gather requests into batches of up to B items or T milliseconds and run each batch on one thread.

The first item of a batch starts the clock: the batch closes when it holds
`max_batch` items or `max_wait_ms` after that first item arrived, whichever
comes first. With `max_batch=1` every item runs alone without waiting.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

from edge_sdk.cloud.errors import CloudError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STOP = object()


class BatcherClosedError(CloudError, RuntimeError):
    """An item was submitted to a batcher that is closed."""


class MicroBatcher(Generic[T]):
    """A bounded queue feeding `handle_batch(list_of_items)` on a single thread.

    `submit` blocks while the queue is full, which pushes back on the
    caller. `close` runs what is queued before it returns, or drops it when
    `drain=False`.
    """

    def __init__(
        self,
        handle_batch: Callable[[list[T]], None],
        *,
        max_batch: int = 8,
        max_wait_ms: float = 20.0,
        max_queue: int = 1024,
        name: str = "micro-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch} must be at least 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms {max_wait_ms} must not be negative")
        if max_queue < max_batch:
            raise ValueError(f"max_queue {max_queue} must be at least max_batch {max_batch}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._handle_batch = handle_batch
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._name = name
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._drain = True
        self._lock = threading.Lock()
        self.batch_sizes: Counter[int] = Counter()
        self.items_handled = 0
        self.batch_failures = 0

    @property
    def queue_depth(self) -> int:
        """Items waiting for a batch (approximate while other threads submit)."""
        return self._queue.qsize()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: T, timeout: float | None = None) -> None:
        """Queue one item; raise BatcherClosedError after close() and queue.Full when `timeout` passes first."""
        if self._closed.is_set():
            raise BatcherClosedError(f"{self._name} is closed: start a new batcher to submit more items")
        self._queue.put(item, timeout=timeout)

    def close(self, timeout: float = 10.0, drain: bool = True) -> None:
        """Stop the batch thread; with `drain` the queued items are handled first. Safe to call twice."""
        if self._closed.is_set():
            return
        self._drain = drain
        self._closed.set()
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("%s did not stop within %.1f s; %d items still queued", self._name, timeout, self.queue_depth)

    def __enter__(self) -> MicroBatcher[T]:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch and (self._drain or not self._closed.is_set()):
                self._run_batch(batch)
            if stop:
                return

    def _collect(self) -> tuple[list[T], bool]:
        """Block for a first item, then gather more until the batch is full or its wait time ends."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch: list[T] = [first]  # type: ignore[list-item]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)  # type: ignore[arg-type]
        return batch, False

    def _run_batch(self, batch: list[T]) -> None:
        try:
            self._handle_batch(batch)
        except Exception:
            # The handler replies to each item itself, so an exception escaping it is
            # a bug: it is logged with the batch size and the thread keeps running.
            self.batch_failures += 1
            logger.exception("%s: a batch of %d items failed", self._name, len(batch))
        with self._lock:
            self.batch_sizes[len(batch)] += 1
            self.items_handled += len(batch)
