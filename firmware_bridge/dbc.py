"""Decode chosen CAN signals from frames with a DBC file (cantools).

A configured signal is either one DBC signal, `"MESSAGE.SIGNAL"`, or a list of
signals of the same message whose values are added, for sensors that split a
value into coarse and fine parts (Toyota's STEER_ANGLE + STEER_FRACTION).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

import can
import cantools

from firmware_bridge.errors import DbcError


@dataclasses.dataclass(frozen=True, slots=True)
class SignalValue:
    """Latest value of one configured signal; `received_at` is on the decoder's clock (seconds)."""

    name: str
    value: float
    unit: str | None
    received_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class _SignalSpec:
    name: str
    frame_id: int
    is_extended: bool
    signals: tuple[str, ...]
    unit: str | None


class DbcDecoder:
    """Keep the latest value of each configured signal from the frames fed to `process`.

    Frames of messages that no configured signal uses are ignored cheaply.
    `process` may run on a reader thread while `latest` is called elsewhere.
    """

    def __init__(self, dbc_path: str | Path, signals: Mapping[str, str | Sequence[str]], *, clock: Callable[[], float]) -> None:
        try:
            database = cantools.database.load_file(str(dbc_path), strict=False)
        except (OSError, cantools.database.errors.Error, ValueError) as exc:
            raise DbcError(f"DBC file {dbc_path} could not be loaded: {exc}") from exc
        if not isinstance(database, cantools.database.can.Database):
            raise DbcError(f"{dbc_path} is not a CAN database: give a .dbc file")
        self._database: cantools.database.can.Database = database
        self._clock = clock
        self._specs: dict[tuple[int, bool], list[_SignalSpec]] = {}
        for name, spec in signals.items():
            parsed = self._parse_spec(dbc_path, name, spec)
            self._specs.setdefault((parsed.frame_id, parsed.is_extended), []).append(parsed)
        self._latest: dict[str, SignalValue] = {}
        self._lock = threading.Lock()
        self.decode_errors = 0

    def _parse_spec(self, dbc_path: str | Path, name: str, spec: str | Sequence[str]) -> _SignalSpec:
        parts = [spec] if isinstance(spec, str) else list(spec)
        if not parts or not all(isinstance(part, str) and part.count(".") == 1 for part in parts):
            raise DbcError(f"signal {name!r} = {spec!r} is invalid: give 'MESSAGE.SIGNAL' or a list of them from one message")
        message_names = {part.split(".")[0] for part in parts}
        if len(message_names) != 1:
            raise DbcError(f"signal {name!r} = {spec!r} mixes messages {sorted(message_names)}: a sum must come from one message")
        message_name = message_names.pop()
        try:
            message = self._database.get_message_by_name(message_name)
        except KeyError:
            raise DbcError(f"message {message_name!r} of signal {name!r} is not in {dbc_path}") from None
        signal_names = tuple(part.split(".")[1] for part in parts)
        known = {signal.name: signal for signal in message.signals}
        missing = [signal for signal in signal_names if signal not in known]
        if missing:
            raise DbcError(f"signal(s) {missing} of {name!r} are not in message {message_name} of {dbc_path}")
        return _SignalSpec(name, message.frame_id, message.is_extended_frame, signal_names, known[signal_names[0]].unit or None)

    @property
    def frame_ids(self) -> frozenset[int]:
        return frozenset(frame_id for frame_id, _ in self._specs)

    def process(self, message: can.Message) -> list[SignalValue]:
        """Decode `message` if a configured signal uses it; return the values it updated."""
        specs = self._specs.get((message.arbitration_id, message.is_extended_id))
        if specs is None or message.is_remote_frame:
            return []
        try:
            decoded = cast(Mapping[str, float], self._database.decode_message(message.arbitration_id, bytes(message.data), decode_choices=False))
        except (cantools.database.errors.DecodeError, ValueError, KeyError) as exc:
            self.decode_errors += 1
            raise DbcError(f"frame {message.arbitration_id:#x} with data {bytes(message.data).hex()} does not decode: {exc}") from exc
        now = self._clock()
        values = []
        for spec in specs:
            total = 0.0
            for signal in spec.signals:
                total += float(decoded[signal])
            values.append(SignalValue(spec.name, total, spec.unit, now))
        with self._lock:
            for value in values:
                self._latest[value.name] = value
        return values

    def latest(self) -> dict[str, SignalValue]:
        """Return a copy of the latest value of every signal seen so far."""
        with self._lock:
            return dict(self._latest)
