"""Byte-stream framing shared by every link: buffering, length caps, resynchronization.

A framer turns arbitrary read chunks into complete frames. It never hands out
a frame before its terminator arrived, bounds its buffer by `max_length`,
skips garbage before a start byte, and starts over at the next terminator (or
start byte) after an overlong frame. It only splits bytes: the protocol layer
validates each frame and reports checksum errors back to `FrameCounters`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(slots=True)
class FrameCounters:
    """Running totals of one link; updated by the reader thread, read by `status()`."""

    bytes: int = 0
    frames: int = 0
    frame_errors: int = 0
    checksum_errors: int = 0
    resyncs: int = 0
    garbage_bytes: int = 0
    overflows: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class DelimitedFramer:
    """Split a byte stream into frames ending with a one-byte terminator.

    Args:
        terminator: byte that ends a frame (b"\\n" for NMEA, b"\\r" for SLCAN, b"\\x00" for COBS).
        max_length: maximum frame length, terminator included; longer frames are dropped and counted.
        start: optional byte that opens every frame (b"$" for NMEA); bytes before it are garbage.
        include_terminator: keep the terminator at the end of each emitted frame.
        single_tokens: bytes that form a frame on their own wherever they appear (SLCAN's BEL).
        skip_empty: drop empty frames (COBS uses runs of 0x00 as idle fill).
    """

    def __init__(
        self,
        terminator: bytes,
        max_length: int,
        *,
        start: bytes | None = None,
        include_terminator: bool = False,
        single_tokens: bytes = b"",
        skip_empty: bool = False,
        counters: FrameCounters | None = None,
    ) -> None:
        if len(terminator) != 1 or (start is not None and len(start) != 1):
            raise ValueError(f"terminator {terminator!r} and start {start!r} must be single bytes")
        if max_length < 2:
            raise ValueError(f"max_length {max_length} is too small: a frame needs at least two bytes")
        self._terminator = terminator
        self._start = start
        self._max_length = max_length
        self._include_terminator = include_terminator
        self._single_tokens = single_tokens
        self._token_list = [bytes([b]) for b in single_tokens]
        self._skip_empty = skip_empty
        self._buffer = bytearray()
        self._discarding = False
        self.counters = counters if counters is not None else FrameCounters()

    def reset(self) -> None:
        """Forget any partial frame, for example after the link was reopened."""
        self._buffer.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data` and return every frame it completes, in order."""
        self.counters.bytes += len(data)
        if self._single_tokens:
            return self._feed_with_tokens(data)
        return self._feed_plain(data)

    def _feed_with_tokens(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        piece_start = 0
        while True:
            index = min((i for i in (data.find(t, piece_start) for t in self._token_list) if i >= 0), default=-1)
            if index < 0:
                break
            frames += self._feed_plain(data[piece_start:index])
            if self._buffer:
                # A token in the middle of a line ends that line as garbage.
                self._drop_garbage(len(self._buffer))
                self._buffer.clear()
            self._discarding = False
            frames.append(data[index : index + 1])
            self.counters.frames += 1
            piece_start = index + 1
        frames += self._feed_plain(data[piece_start:])
        return frames

    def _feed_plain(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        position = 0
        terminator = self._terminator
        while position < len(buffer):
            if self._discarding:
                end = buffer.find(terminator, position)
                if end < 0:
                    self._drop_garbage(len(buffer) - position)
                    position = len(buffer)
                    break
                self._drop_garbage(end + 1 - position)
                position = end + 1
                self._discarding = False
                continue
            if self._start is not None:
                begin = buffer.find(self._start, position)
                if begin < 0:
                    self._drop_garbage(len(buffer) - position)
                    position = len(buffer)
                    break
                if begin > position:
                    self._drop_garbage(begin - position)
                    position = begin
            end = buffer.find(terminator, position)
            if end < 0:
                position = self._check_partial(buffer, position)
                break
            frame = self._cut_frame(buffer, position, end)
            position = end + 1
            if frame is not None:
                frames.append(frame)
        del buffer[:position]
        return frames

    def _cut_frame(self, buffer: bytearray, position: int, end: int) -> bytes | None:
        if self._start is not None:
            restart = buffer.rfind(self._start, position + 1, end)
            if restart >= 0:
                # A start byte inside the frame means the earlier frame was cut short.
                self._drop_garbage(restart - position)
                position = restart
        stop = end + 1 if self._include_terminator else end
        if end + 1 - position > self._max_length:
            self.counters.overflows += 1
            self._drop_garbage(end + 1 - position)
            return None
        if stop == position and self._skip_empty:
            return None
        self.counters.frames += 1
        return bytes(buffer[position:stop])

    def _check_partial(self, buffer: bytearray, position: int) -> int:
        pending = len(buffer) - position
        if pending < self._max_length:
            return position
        self.counters.overflows += 1
        if self._start is not None:
            restart = buffer.find(self._start, position + 1)
            if restart >= 0:
                self._drop_garbage(restart - position)
                return restart
        self._drop_garbage(pending)
        self._discarding = self._start is None
        return len(buffer)

    def _drop_garbage(self, count: int) -> None:
        if count > 0:
            self.counters.garbage_bytes += count
            self.counters.resyncs += 1
