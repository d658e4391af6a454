"""GPS receiver link: NMEA sentences from a serial port merged into the latest fix."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from firmware_bridge.framing import DelimitedFramer
from firmware_bridge.link import LinkSettings, SerialLink
from firmware_bridge.nmea import MAX_SENTENCE_LENGTH, DopRecord, GpsFix, NmeaRecord, parse_record

_POSITION_FIELDS = ("latitude", "longitude", "altitude_m", "fix_quality", "satellites_used", "hdop", "time", "date")


class FixTracker:
    """Merge GGA, RMC, GLL, VTG and GSA records of one receiver into the latest fix.

    A no-fix record from GGA, RMC, GLL or GSA clears the position, so a lost
    fix is never reported with the last known coordinates. Thread-safe.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"has_fix": False}
        self._updated_at: float | None = None

    def update(self, record: NmeaRecord) -> None:
        """Fold one parsed record into the current fix."""
        now = self._clock()
        with self._lock:
            if isinstance(record, GpsFix):
                self._update_fix(record)
            elif isinstance(record, DopRecord):
                if not record.has_fix:
                    self._clear()
                elif record.hdop is not None:
                    self._state["hdop"] = record.hdop
            else:
                return
            self._updated_at = now

    def _update_fix(self, record: GpsFix) -> None:
        if record.sentence_type == "VTG":
            if record.has_fix and self._state["has_fix"]:
                self._state["speed_mps"] = record.speed_mps
                self._state["course_deg"] = record.course_deg
            return
        if not record.has_fix:
            self._clear()
            return
        self._state["has_fix"] = True
        self._state["talker"] = record.talker
        for name in _POSITION_FIELDS + ("speed_mps", "course_deg"):
            value = getattr(record, name)
            if value is not None:
                self._state[name] = value

    def _clear(self) -> None:
        self._state = {"has_fix": False}

    def snapshot(self) -> dict[str, Any] | None:
        """Return the merged fix as a JSON-ready dict with `age_s`, or None before the first sentence."""
        with self._lock:
            if self._updated_at is None:
                return None
            state = dict(self._state)
            age = self._clock() - self._updated_at
        for name in ("time", "date"):
            if name in state:
                state[name] = state[name].isoformat()
        if "fix_quality" in state:
            state["fix_quality"] = state["fix_quality"].name.lower()
        state["age_s"] = age
        return state


class GpsLink(SerialLink):
    """A GPS receiver on a serial port; strict NMEA with CR LF, checksums required unless configured."""

    def __init__(self, name: str, settings: LinkSettings, *, require_checksum: bool = True,
                 tracker: FixTracker | None = None, on_record: Callable[[NmeaRecord], None] | None = None) -> None:
        framer = DelimitedFramer(b"\n", MAX_SENTENCE_LENGTH, start=b"$", include_terminator=True)
        super().__init__(name, settings, framer)
        self.require_checksum = require_checksum
        self.tracker = tracker if tracker is not None else FixTracker()
        self.on_record = on_record
        self.unsupported_sentences = 0

    def handle_frame(self, frame: bytes) -> None:
        record = parse_record(frame, require_checksum=self.require_checksum)
        if record is None:
            self.unsupported_sentences += 1
            return
        self.tracker.update(record)
        if self.on_record is not None:
            self.on_record(record)

    def status(self) -> dict[str, Any]:
        status = super().status()
        status["unsupported_sentences"] = self.unsupported_sentences
        return status

