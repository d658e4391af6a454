"""The C and Python MCU frame codecs agree byte for byte on the shared vectors and random frames."""

from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from firmware_bridge.cobs import cobs_decode, cobs_encode
from firmware_bridge.crc import CRC16_CHECK, crc16_ccitt_false
from firmware_bridge.errors import McuFrameError
from firmware_bridge.framing import DelimitedFramer
from firmware_bridge.mcu_protocol import (
    DELIMITER, MAX_PAYLOAD, MAX_WIRE_FRAME, Ack, AckStatus, AlertKind, AlertSeverity, DriverAlert, Gear, Heartbeat,
    McuFrame, McuMessage, MessageType, NodeState, VehicleState, decode_frame, encode_frame, encode_payload,
)

C_DIR = Path(__file__).resolve().parents[2] / "firmware_bridge" / "c"
VECTORS = C_DIR / "test_vectors.txt"
C_CODES = {"cobs": -2, "length": -3, "crc": -4, "version": -5}


@pytest.fixture(scope="module")
def c_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("gcc is not installed: .ci/run must install it (apt-get install -y gcc)")
        pytest.skip("gcc is not installed, so the C codec cannot be compiled (apt-get install -y gcc)")
    output = tmp_path_factory.mktemp("c") / "test_mcu_frame"
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Wconversion", "-Wsign-conversion", "-Werror", "-O2", "-o", str(output),
         str(C_DIR / "mcu_frame.c"), str(C_DIR / "test_mcu_frame.c")],
        check=True, capture_output=True, text=True,
    )
    return output


def _run_filter(program: Path, commands: list[str]) -> list[str]:
    result = subprocess.run([str(program), "filter"], input="\n".join(commands) + "\n", capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.splitlines()


def test_crc_and_cobs_match_published_check_values() -> None:
    assert crc16_ccitt_false(b"123456789") == CRC16_CHECK == 0x29B1
    assert cobs_encode(bytes.fromhex("11220033")) == bytes.fromhex("0311220233")
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_decode(bytes.fromhex("0311220233")) == bytes.fromhex("11220033")


def test_c_codec_uses_only_string_and_stdint() -> None:
    for name in ("mcu_frame.c", "mcu_frame.h"):
        includes = re.findall(r'#include\s+[<"]([^>"]+)[>"]', (C_DIR / name).read_text())
        assert set(includes) <= {"string.h", "stdint.h", "mcu_frame.h"}, (name, includes)
        assert "malloc" not in (C_DIR / name).read_text()


def test_c_codec_passes_shared_vectors(c_program: Path) -> None:
    result = subprocess.run([str(c_program), "vectors", str(VECTORS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\d+ passed, 0 failed$", result.stdout, re.MULTILINE)


def test_python_codec_passes_shared_vectors() -> None:
    checked = 0
    for line in VECTORS.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "ok":
            version, message_type, seq, flags = (int(value) for value in parts[1:5])
            payload = b"" if parts[5] == "-" else bytes.fromhex(parts[5])
            frame = McuFrame(message_type, seq, flags, payload, version)
            assert encode_frame(frame).hex() == parts[6], line
            assert decode_frame(bytes.fromhex(parts[6])[:-1]) == frame, line
        else:
            block = b"" if parts[2] == "-" else bytes.fromhex(parts[2])
            with pytest.raises(McuFrameError) as error:
                decode_frame(block)
            assert error.value.reason == parts[1], line
        checked += 1
    assert checked >= 15


def _random_frame(rng: random.Random) -> McuFrame:
    length = rng.choice([0, 1, 2, rng.randrange(MAX_PAYLOAD + 1), MAX_PAYLOAD])
    payload = bytes(rng.choice([0, 0xFF, rng.randrange(256)]) for _ in range(length))
    return McuFrame(rng.randrange(256), rng.randrange(256), rng.randrange(256), payload)


def test_c_and_python_agree_on_random_round_trips(c_program: Path) -> None:
    rng = random.Random(20261204)
    frames = [_random_frame(rng) for _ in range(2000)]
    commands = [f"E 1 {f.message_type} {f.seq} {f.flags} {f.payload.hex() or '-'}" for f in frames]
    c_wire = _run_filter(c_program, commands)
    assert c_wire == [encode_frame(frame).hex() for frame in frames]

    decode_commands = [f"D {encode_frame(frame)[:-1].hex()}" for frame in frames]
    expected = [f"OK 1 {f.message_type} {f.seq} {f.flags} {f.payload.hex() or '-'}" for f in frames]
    assert _run_filter(c_program, decode_commands) == expected


def test_c_and_python_agree_on_corrupted_blocks(c_program: Path) -> None:
    rng = random.Random(7)
    blocks = []
    for _ in range(1000):
        block = bytearray(encode_frame(_random_frame(rng))[:-1])
        for _ in range(rng.randrange(1, 3)):
            block[rng.randrange(len(block))] ^= 1 << rng.randrange(8)
        blocks.append(bytes(block))
    answers = _run_filter(c_program, [f"D {block.hex() or '-'}" for block in blocks])
    for block, answer in zip(blocks, answers, strict=True):
        try:
            frame = decode_frame(block)
        except McuFrameError as exc:
            assert answer == f"ERR {C_CODES[exc.reason]}", block.hex()
        else:
            assert answer == f"OK {frame.version} {frame.message_type} {frame.seq} {frame.flags} {frame.payload.hex() or '-'}"


def test_c_stream_decoder_resyncs_like_python(c_program: Path) -> None:
    rng = random.Random(3)
    frames = [_random_frame(rng) for _ in range(20)]
    stream = b"\x13\x37garbage" + b"".join(encode_frame(frame) for frame in frames)
    lines = _run_filter(c_program, [f"S {stream.hex()}"])
    assert lines[-1] == "END"
    decoded = [line for line in lines if line.startswith("OK")]
    # Garbage without a delimiter merges with the first block, so both sides lose that frame only.
    assert decoded == [f"OK 1 {f.message_type} {f.seq} {f.flags} {f.payload.hex() or '-'}" for f in frames[1:]]
    assert sum(line.startswith("ERR") for line in lines) == 1
    framer = DelimitedFramer(DELIMITER, MAX_WIRE_FRAME, skip_empty=True)
    python_frames = []
    for block in framer.feed(stream):
        try:
            python_frames.append(decode_frame(block))
        except McuFrameError:
            pass
    assert python_frames == frames[1:]


def _random_message(rng: random.Random) -> McuMessage:
    choice = rng.randrange(4)
    if choice == 0:
        return Heartbeat(rng.choice([0, 0xFFFFFFFF, rng.randrange(2**32)]), NodeState(rng.randrange(3)))
    if choice == 1:
        speed = rng.choice([None, 0.0, 655.34, rng.randrange(65535) / 100])
        steering = rng.choice([None, -3276.8, 3276.6, rng.randrange(-32768, 32767) / 10])
        return VehicleState(speed, steering, Gear(rng.randrange(5)), rng.randrange(8))
    if choice == 2:
        return DriverAlert(AlertKind(rng.randrange(6)), AlertSeverity(rng.randrange(3)), rng.randrange(65536))
    return Ack(rng.randrange(256), rng.randrange(256), AckStatus(rng.randrange(3)))


def test_c_and_python_agree_on_message_payloads(c_program: Path) -> None:
    rng = random.Random(11)
    messages = [_random_message(rng) for _ in range(1000)]
    encoded = [encode_payload(message) for message in messages]
    fields = [" ".join(str(value) for value in struct.unpack(_payload_format(message_type), payload))
              for message_type, payload in encoded]

    unpacked = _run_filter(c_program, [f"U {message_type} {payload.hex()}" for message_type, payload in encoded])
    assert unpacked == fields

    packed = _run_filter(c_program, [f"P {message_type} {text}" for (message_type, _), text in zip(encoded, fields, strict=True)])
    assert packed == [payload.hex() for _, payload in encoded]

    wrong_length = _run_filter(c_program, [f"U {message_type} {payload[:-1].hex() or '-'}" for message_type, payload in encoded[:50]])
    assert wrong_length == ["ERR -6"] * 50


def _payload_format(message_type: int) -> str:
    return {MessageType.HEARTBEAT: "<IB", MessageType.VEHICLE_STATE: "<HhBB", MessageType.DRIVER_ALERT: "<BBH", MessageType.ACK: "<BBB"}[MessageType(message_type)]
