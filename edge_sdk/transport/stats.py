"""Log rate limiting for repeated transport failures."""

from __future__ import annotations

import logging
import threading
from typing import Any


class RateLimitedLog:
    """Log the first occurrence of a repeated failure, then every `every`-th, with the repeat count."""

    def __init__(self, logger: logging.Logger, every: int = 10) -> None:
        self._logger = logger
        self._every = every
        self._count = 0
        self._lock = threading.Lock()

    def _should_log(self) -> tuple[bool, int]:
        with self._lock:
            self._count += 1
            return self._count == 1 or self._count % self._every == 0, self._count

    def warning(self, message: str, *args: Any) -> None:
        emit, count = self._should_log()
        if emit:
            self._logger.warning(message + " [occurrence %d]", *args, count)

    def error(self, message: str, *args: Any) -> None:
        emit, count = self._should_log()
        if emit:
            self._logger.error(message + " [occurrence %d]", *args, count)
