"""Reader for `candump -L` log files (SocketCAN can-utils), for replay and tests.

Line format: `(seconds.micros) interface id#data`, where a 3-digit id is a
standard frame and an 8-digit id an extended one, `id#R` or `id#R<dlc>` is a
remote frame and `id##...` is CAN FD, which this reader rejects.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import can

from firmware_bridge.errors import SlcanError

_LINE = re.compile(
    r"\((?P<time>\d+\.\d+)\) (?P<channel>\S+) (?P<id>[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})#"
    r"(?P<payload>R[0-8]?|(?:[0-9A-Fa-f]{2}){0,8})\Z"
)


@dataclasses.dataclass(frozen=True, slots=True)
class CandumpRecord:
    """One logged frame: capture time in seconds, interface name and the frame."""

    timestamp: float
    channel: str
    message: can.Message


def parse_candump_line(line: str) -> CandumpRecord:
    """Parse one `candump -L` line (without its newline); raise SlcanError when it is malformed."""
    match = _LINE.match(line)
    if match is None:
        if "##" in line:
            raise SlcanError(f"candump line {line[:60]!r} is a CAN FD frame: only classic CAN frames are supported")
        raise SlcanError(f"candump line {line[:60]!r} is invalid: expected '(seconds.micros) can0 123#11223344'")
    id_text = match["id"]
    extended = len(id_text) == 8
    arbitration_id = int(id_text, 16)
    if (extended and arbitration_id > 0x1FFFFFFF) or (not extended and arbitration_id > 0x7FF):
        raise SlcanError(f"candump line {line[:60]!r} has id {id_text} outside the {'29' if extended else '11'}-bit range")
    payload = match["payload"]
    timestamp = float(match["time"])
    if payload.startswith("R"):
        dlc = int(payload[1:]) if len(payload) > 1 else 0
        message = can.Message(timestamp=timestamp, arbitration_id=arbitration_id, is_extended_id=extended,
                              is_remote_frame=True, dlc=dlc, channel=match["channel"])
    else:
        message = can.Message(timestamp=timestamp, arbitration_id=arbitration_id, is_extended_id=extended,
                              data=bytes.fromhex(payload), channel=match["channel"])
    return CandumpRecord(timestamp, match["channel"], message)


def read_candump_log(path: str | Path) -> Iterator[CandumpRecord]:
    """Yield every frame of a `candump -L` file in file order; blank lines and `#` comments are skipped.

    Raises SlcanError naming the file and line number of the first malformed line.
    """
    with open(path, encoding="ascii", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            try:
                yield parse_candump_line(line)
            except SlcanError as exc:
                raise SlcanError(f"{path}:{number}: {exc}") from None
