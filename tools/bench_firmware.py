#!/usr/bin/env python3
"""Benchmark of the firmware_bridge parsers; writes JSON.

Measures NMEA sentences parsed per second, with firmware_bridge.nmea and
pynmea2 on the same sentences, and how strict each NMEA parser is on a fixed
set of malformed sentences. Also measures SLCAN lines decoded per second (the
codec alone, through the link's framing layer, and end to end over a
pseudo-terminal) and MCU frames decoded per second. Input is the real data folder (EDGE_SDK_DATA,
default ../shared/data).

    python tools/bench_firmware.py --output bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pynmea2  # noqa: E402

from firmware_bridge.candump import read_candump_log  # noqa: E402
from firmware_bridge.errors import NmeaError  # noqa: E402
from firmware_bridge.link import LinkSettings  # noqa: E402
from firmware_bridge.mcu_protocol import (  # noqa: E402
    AlertKind, AlertSeverity, DriverAlert, Gear, Heartbeat, VehicleState, decode_frame, decode_payload, encode_message,
)
from firmware_bridge.nmea import parse_record  # noqa: E402
from firmware_bridge.slcan import SlcanLink, SlcanSettings, decode_frame as decode_slcan, encode_frame as encode_slcan  # noqa: E402

NMEA_FILES = ["haicom-305N.log", "bu353s4.log", "telit-he910.log"]

# (case, sentence) pairs a strict parser should reject, plus one it must accept.
STRICTNESS_CASES = [
    ("no checksum", "$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000"),
    ("latitude minutes >= 60", "$GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*44"),
    ("hemisphere X", "$GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*5F"),
    ("hour 25", "$GPGGA,253519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*44"),
    ("HDOP nan", "$GPGGA,123519,4807.038,N,01131.000,E,1,08,nan,545.4,M,46.9,M,,*2B"),
    ("date 31 Feb", "$GPRMC,081836,A,3751.65,S,14507.36,E,1.0,360.0,310298,,,A*61"),
    ("text after checksum", "$GPVTG,0.00,T,,,0.00,N,0.00,K,A*70xx"),
    ("longer than 82 characters", "$GPTXT," + "A" * 80 + "*00"),
    ("no-fix RMC read as position", "$GPRMC,,V,,,,,,,,,,N*53"),
]


def _with_checksum(sentence: str) -> str:
    body = sentence[1 : sentence.index("*")] if "*" in sentence else sentence[1:]
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    tail = sentence[sentence.index("*") + 3 :] if "*" in sentence else None
    return f"${body}*{checksum:02X}" + (tail or "") if tail is not None else f"${body}*{checksum:02X}"


def _rate(count: int, run: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def _paired_rates(count: int, first: Callable[[], None], second: Callable[[], None], repeats: int) -> tuple[float, float, float]:
    """Time two runs alternately so that load from other processes hits both alike.

    Returns the best rate of each and the median of the per-pair speed ratios first/second.
    """
    first_times: list[float] = []
    second_times: list[float] = []
    for _ in range(repeats):
        for run_, times in ((first, first_times), (second, second_times)):
            started = time.perf_counter()
            run_()
            times.append(time.perf_counter() - started)
    ratios = sorted(b / a for a, b in zip(first_times, second_times))
    return count / min(first_times), count / min(second_times), ratios[len(ratios) // 2]


def _ours_nmea(sentences: list[str]) -> None:
    for sentence in sentences:
        parse_record(sentence)


def _pynmea2_nmea(sentences: list[str]) -> None:
    # Parse with the checksum required and read the position, as the daemon would.
    for sentence in sentences:
        message = pynmea2.parse(sentence, check=True)
        if hasattr(message, "latitude"):
            message.latitude, message.longitude


def _strictness() -> list[dict[str, str]]:
    rows = []
    for case, sentence in STRICTNESS_CASES:
        if case not in ("no checksum", "text after checksum"):
            sentence = _with_checksum(sentence)
        try:
            record = parse_record(sentence)
            ours = "accepted" if getattr(record, "latitude", None) is not None or case != "no-fix RMC read as position" else "no fix (latitude None)"
        except NmeaError:
            ours = "rejected"
        try:
            message = pynmea2.parse(sentence)
            latitude = getattr(message, "latitude", None)
            theirs = f"accepted (latitude {latitude})" if case == "no-fix RMC read as position" else "accepted"
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError) as exc:
            theirs = f"rejected ({type(exc).__name__})"
        rows.append({"case": case, "firmware_bridge": ours, "pynmea2_default": theirs})
    return rows


def _pty_replay(records: list, batch: int) -> float:
    from firmware_bridge.simulator import PtyDevice, SlcanAdapterSim

    with tempfile.TemporaryDirectory() as folder:
        device = PtyDevice("can", Path(folder))
        adapter = SlcanAdapterSim(device, records, speed=0.0, batch=batch)
        done = threading.Event()
        count = [0]

        def on_frame(_frame: object) -> None:
            count[0] += 1
            if count[0] == len(records):
                done.set()

        link = SlcanLink("can", LinkSettings(device.path), SlcanSettings(), on_frame=on_frame)
        link.start()
        link.wait_open(10)
        started = time.perf_counter()
        adapter.start()
        finished = done.wait(120)
        elapsed = time.perf_counter() - started
        link.stop()
        adapter.stop_event.set()
        device.close()
        adapter.stop()
    if not finished:
        raise RuntimeError(f"pty replay received {count[0]} of {len(records)} frames within 120 s")
    return len(records) / elapsed


def run(data_dir: Path, repeats: int) -> dict[str, object]:
    sentences = []
    for name in NMEA_FILES:
        sentences += [line.strip() for line in (data_dir / "nmea" / name).read_text().splitlines() if line.startswith("$")]
    records = list(read_candump_log(data_dir / "can" / "rav4_2017_bus0_dbc_ids.candump.log"))
    lines = [encode_slcan(r.message, adapter_time_ms=round(r.timestamp * 1000) % 60000) for r in records]
    stripped = [line[:-1] for line in lines]
    stream = b"".join(lines)
    mcu_messages = [Heartbeat(i) if i % 3 == 0 else VehicleState(i % 200, -(i % 90), Gear.DRIVE, i & 7) if i % 3 == 1
                    else DriverAlert(AlertKind.STOP_SIGN, AlertSeverity.WARNING, i) for i in range(20000)]
    mcu_blocks = [encode_message(m, i & 0xFF, ack_request=False)[:-1] for i, m in enumerate(mcu_messages)]

    def slcan_codec() -> None:
        for line in stripped:
            decode_slcan(line)

    def slcan_link() -> None:
        link = SlcanLink("bench", LinkSettings("loop://"), SlcanSettings(), on_frame=None)
        for start in range(0, len(stream), 4096):
            link.feed(stream[start : start + 4096])

    def mcu_decode() -> None:
        for block in mcu_blocks:
            decode_payload(decode_frame(block))

    ours, theirs, ratio = _paired_rates(len(sentences), lambda: _ours_nmea(sentences), lambda: _pynmea2_nmea(sentences), repeats)
    return {
        "load_average_1min": round(os.getloadavg()[0], 1),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "versions": {"pynmea2": pynmea2.version},
        "nmea": {
            "sentences": len(sentences),
            "firmware_bridge_per_s": round(ours),
            "pynmea2_per_s": round(theirs),
            "speed_ratio_firmware_bridge_to_pynmea2": round(ratio, 2),
            "strictness": _strictness(),
        },
        "slcan": {
            "frames": len(lines),
            "codec_per_s": round(_rate(len(lines), slcan_codec, repeats)),
            "framing_and_codec_per_s": round(_rate(len(lines), slcan_link, repeats)),
            "pty_end_to_end_per_s": round(_pty_replay(records, 64)),
        },
        "mcu": {"frames": len(mcu_blocks), "decode_per_s": round(_rate(len(mcu_blocks), mcu_decode, repeats))},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the firmware_bridge parsers and write JSON.")
    default_data = os.environ.get("EDGE_SDK_DATA", str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_data), help="real data folder (default: EDGE_SDK_DATA or ../shared/data)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the fastest counts (default 5)")
    parser.add_argument("--output", type=Path, help="write the JSON here instead of standard output")
    args = parser.parse_args(argv)
    result = run(args.data_dir, args.repeats)
    text = json.dumps(result, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
