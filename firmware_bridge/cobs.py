"""Consistent Overhead Byte Stuffing (COBS).

An encoded block contains no zero byte, so 0x00 can delimit frames on the
wire. Encoding adds one byte per started 254 bytes of input, plus one.
"""

from __future__ import annotations

from firmware_bridge.errors import CobsError


def cobs_encode(data: bytes) -> bytes:
    """Encode `data` so that the result contains no 0x00 byte (the delimiter is not appended)."""
    out = bytearray([0])
    code_index = 0
    code = 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(block: bytes) -> bytes:
    """Decode one COBS block (without its 0x00 delimiter).

    Raises CobsError when the block is empty, contains a zero byte or a code
    byte points past its end.
    """
    if not block:
        raise CobsError("empty COBS block: a frame needs at least one code byte; the reader skips it")
    out = bytearray()
    index = 0
    length = len(block)
    while index < length:
        code = block[index]
        if code == 0:
            raise CobsError(f"zero byte at offset {index} inside a COBS block of {length} bytes: the block is corrupt")
        end = index + code
        if end > length:
            raise CobsError(
                f"COBS code byte {code} at offset {index} points past the end of a {length}-byte block: the block is truncated"
            )
        chunk = block[index + 1 : end]
        if 0 in chunk:
            raise CobsError(f"zero byte inside a COBS block of {length} bytes: the block is corrupt")
        out += chunk
        index = end
        if code != 0xFF and index < length:
            out.append(0)
    return bytes(out)
