"""CRC-16/CCITT-FALSE, the checksum of the MCU link.

Parameters (Rocksoft model): width 16, poly 0x1021, init 0xFFFF, refin false,
refout false, xorout 0x0000; check value over b"123456789" is 0x29B1. The C
codec in firmware_bridge/c/ computes the same function with the same table.
"""

from __future__ import annotations

CRC16_POLY = 0x1021
CRC16_INIT = 0xFFFF
CRC16_CHECK = 0x29B1


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC16_POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes, crc: int = CRC16_INIT) -> int:
    """Compute CRC-16/CCITT-FALSE of `data`; pass a previous result as `crc` to continue it."""
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc
