"""Vehicle simulator: serves NMEA, SLCAN and MCU frames over pseudo-terminal pairs, fed from log files.

Run it, then point the daemon's vehicle links at the printed device paths:

    python -m firmware_bridge.simulator --nmea GPS.log --can-log BUS.candump.log --mcu --link-dir /tmp/vehicle

With --link-dir each device also gets a stable symlink (gps, can, mcu), the
way /dev/serial/by-id names a USB adapter. Tests and the demo import
`VehicleSim` and its parts directly. Only pseudo-terminals are used.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterable
from pathlib import Path

from firmware_bridge.candump import CandumpRecord, read_candump_log
from firmware_bridge.framing import DelimitedFramer
from firmware_bridge.mcu_protocol import (
    DELIMITER, MAX_WIRE_FRAME, Ack, AckStatus, DriverAlert, Heartbeat, McuFrameError, MessageType, VehicleState,
    decode_frame, decode_payload, encode_message,
)
from firmware_bridge.slcan import BEL, CR, encode_frame

logger = logging.getLogger(__name__)


class PtyDevice:
    """One pseudo-terminal pair: the simulator writes to `master_fd`, clients open `path`.

    `unplug()` closes both ends (the client's reads fail as with a pulled
    USB adapter); `replug()` makes a new pair behind the same symlink.
    """

    def __init__(self, name: str, link_dir: Path | None = None) -> None:
        self.name = name
        self.link = link_dir / name if link_dir is not None else None
        self.master_fd = -1
        self.slave_fd = -1
        self.device = ""
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.device

    def replug(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.device = os.ttyname(self.slave_fd)
        if self.link is not None:
            tmp = self.link.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.device)
            tmp.replace(self.link)

    def unplug(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self.slave_fd = -1
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    close = unplug

    def write(self, data: bytes) -> None:
        """Write all of `data`, waiting while the pty buffer is full; raises OSError once the device is closed."""
        view = memoryview(data)
        while view:
            fd = self.master_fd
            if fd < 0:
                raise OSError(f"pty device {self.name} is closed")
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                # Nobody reads the other end yet: wait briefly, then check whether the device was closed.
                select.select([], [fd], [], 0.1)
                continue
            view = view[written:]

    def read_available(self, timeout: float) -> bytes:
        fd = self.master_fd
        if fd < 0:
            raise OSError(f"pty device {self.name} is closed")
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return b""


class _Worker:
    def __init__(self, name: str) -> None:
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._guarded_run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread.ident is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def _guarded_run(self) -> None:
        try:
            self.run()
        except (OSError, ValueError) as exc:  # the device was unplugged or closed under this thread
            logger.debug("%s stopped: %s", self._thread.name, exc)
        finally:
            self.done.set()

    def run(self) -> None:
        raise NotImplementedError


class NmeaFeeder(_Worker):
    """Write each `$` sentence of an NMEA log with CR LF; `interval_s` between sentences (0 = no wait)."""

    def __init__(self, device: PtyDevice, log_path: Path, *, interval_s: float = 0.0, repeat: bool = False) -> None:
        super().__init__("sim-nmea")
        self.device = device
        self.sentences = [line.strip() for line in log_path.read_text(encoding="ascii").splitlines() if line.startswith("$")]
        self.interval_s = interval_s
        self.repeat = repeat
        self.sent = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            for sentence in self.sentences:
                if self.stop_event.is_set():
                    return
                self.device.write(sentence.encode("ascii") + b"\r\n")
                self.sent += 1
                if self.interval_s:
                    self.stop_event.wait(self.interval_s)
            if not self.repeat:
                return


class SlcanAdapterSim(_Worker):
    """An SLCAN adapter that responds to commands with CR (BEL for unknown ones) and, once opened, replays a candump log.

    Frames carry the SLCAN timestamp (log time in ms modulo 60000). `speed`
    scales the log's timing (1.0 real time, 0 as fast as the pty accepts).
    """

    def __init__(self, device: PtyDevice, records: Iterable[CandumpRecord], *, speed: float = 0.0, batch: int = 64) -> None:
        super().__init__("sim-slcan")
        self.device = device
        self.records = list(records)
        self.speed = speed
        self.batch = batch
        self.channel_open = threading.Event()
        self.commands: list[str] = []
        self.sent = 0
        self._line = bytearray()

    def run(self) -> None:
        while not self.stop_event.is_set() and not self.channel_open.is_set():
            self._serve_commands(0.05)
        start_wall = time.monotonic()
        start_log = self.records[0].timestamp if self.records else 0.0
        for first in range(0, len(self.records), self.batch):
            if self.stop_event.is_set():
                return
            chunk = self.records[first : first + self.batch]
            if self.speed:
                delay = (chunk[0].timestamp - start_log) / self.speed - (time.monotonic() - start_wall)
                if delay > 0 and self.stop_event.wait(delay):
                    return
            self.device.write(b"".join(encode_frame(r.message, adapter_time_ms=round(r.timestamp * 1000) % 60000) for r in chunk))
            self.sent += len(chunk)
            self._serve_commands(0)
        while not self.stop_event.is_set():
            self._serve_commands(0.05)

    def _serve_commands(self, timeout: float) -> None:
        data = self.device.read_available(timeout)
        for byte in data:
            if byte != CR[0]:
                self._line.append(byte)
                continue
            command = self._line.decode("ascii", errors="replace")
            self._line.clear()
            self.commands.append(command)
            self.device.write(self._response_to(command))

    def _response_to(self, command: str) -> bytes:
        if command in ("O", "L"):
            self.channel_open.set()
            return CR
        if command == "C" or (len(command) == 2 and command[0] == "S" and command[1] in "012345678"):
            return CR
        if command == "V":
            return b"V1013" + CR
        if command[:1] in ("t", "r"):
            return b"z" + CR
        if command[:1] in ("T", "R"):
            return b"Z" + CR
        return BEL


class McuSim(_Worker):
    """The vehicle MCU: acknowledges alerts, records them, sends heartbeats and vehicle states.

    `drop_acks` leaves the first N frames that request an ACK without a reply, to exercise retries;
    `ack_status` is the status sent in each ACK.
    """

    def __init__(self, device: PtyDevice, *, state: Callable[[], VehicleState | None] | None = None,
                 interval_s: float = 0.1, drop_acks: int = 0) -> None:
        super().__init__("sim-mcu")
        self.device = device
        self.state = state
        self.interval_s = interval_s
        self.drop_acks = drop_acks
        self.ack_status = AckStatus.ACCEPTED
        self.alerts: list[DriverAlert] = []
        self.alert_received = threading.Event()
        self.heartbeats_received = 0
        self.heartbeat_received = threading.Event()
        self.frame_errors = 0
        self._framer = DelimitedFramer(DELIMITER, MAX_WIRE_FRAME, skip_empty=True)
        self._seq = 0

    def run(self) -> None:
        next_send = 0.0
        started = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_send:
                next_send = now + self.interval_s
                self._send(Heartbeat(int((now - started) * 1000)))
                state = self.state() if self.state is not None else None
                if state is not None:
                    self._send(state)
            for block in self._framer.feed(self.device.read_available(0.02)):
                self._receive(block)

    def _send(self, message: Heartbeat | VehicleState | Ack, seq: int | None = None) -> None:
        if seq is None:
            seq, self._seq = self._seq, (self._seq + 1) & 0xFF
        self.device.write(encode_message(message, seq, ack_request=False))

    def _receive(self, block: bytes) -> None:
        try:
            frame = decode_frame(block)
            message = decode_payload(frame)
        except McuFrameError:
            self.frame_errors += 1
            return
        # Record before acknowledging, so a sender that returns on the ACK always finds the alert recorded.
        if isinstance(message, DriverAlert):
            if not self.alerts or self.alerts[-1] != message or frame.message_type != MessageType.DRIVER_ALERT:
                self.alerts.append(message)
            self.alert_received.set()
        elif isinstance(message, Heartbeat):
            self.heartbeats_received += 1
            self.heartbeat_received.set()

        if frame.ack_requested:
            if self.drop_acks > 0:
                self.drop_acks -= 1
                return
            self._send(Ack(frame.message_type, frame.seq, self.ack_status), seq=0)


class VehicleSim:
    """Start the simulated devices that were given a log (MCU always when `mcu=True`); a context manager."""

    def __init__(self, *, nmea_log: Path | None = None, can_log: Path | None = None, mcu: bool = False,
                 link_dir: Path | None = None, nmea_interval_s: float = 0.0, can_speed: float = 0.0,
                 mcu_state: Callable[[], VehicleState | None] | None = None, repeat_nmea: bool = False) -> None:
        self.devices: dict[str, PtyDevice] = {}
        self.workers: dict[str, _Worker] = {}
        if nmea_log is not None:
            self.devices["gps"] = PtyDevice("gps", link_dir)
            self.workers["gps"] = NmeaFeeder(self.devices["gps"], Path(nmea_log), interval_s=nmea_interval_s, repeat=repeat_nmea)
        if can_log is not None:
            self.devices["can"] = PtyDevice("can", link_dir)
            self.workers["can"] = SlcanAdapterSim(self.devices["can"], read_candump_log(can_log), speed=can_speed)
        if mcu:
            self.devices["mcu"] = PtyDevice("mcu", link_dir)
            self.workers["mcu"] = McuSim(self.devices["mcu"], state=mcu_state)

    def paths(self) -> dict[str, str]:
        return {name: device.path for name, device in self.devices.items()}

    def start(self, *names: str) -> VehicleSim:
        """Start the named workers (all when none are named).

        pyserial flushes the input buffer on open, so a test starts the NMEA
        feeder only after its client opened the device.
        """
        for name in names or tuple(self.workers):
            self.workers[name].start()
        return self

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop_event.set()
        for device in self.devices.values():
            if device.master_fd >= 0:
                device.close()
        for worker in self.workers.values():
            worker.stop()

    def __enter__(self) -> VehicleSim:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nmea", type=Path, help="NMEA log to serve on the gps device (lines starting with $)")
    parser.add_argument("--nmea-interval", type=float, default=0.1, help="seconds between NMEA sentences (default 0.1)")
    parser.add_argument("--can-log", type=Path, help="candump -L log to replay on the SLCAN device once the channel opens")
    parser.add_argument("--can-speed", type=float, default=1.0, help="replay speed of the CAN log; 1 is real time, 0 as fast as possible")
    parser.add_argument("--mcu", action="store_true", help="serve an MCU that acknowledges alerts and sends heartbeats")
    parser.add_argument("--link-dir", type=Path, help="folder for stable symlinks gps, can and mcu to the devices")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.link_dir is not None:
        args.link_dir.mkdir(parents=True, exist_ok=True)
    sim = VehicleSim(nmea_log=args.nmea, can_log=args.can_log, mcu=args.mcu, link_dir=args.link_dir,
                     nmea_interval_s=args.nmea_interval, can_speed=args.can_speed, repeat_nmea=True)
    if not sim.devices:
        parser.error("nothing to serve: give --nmea, --can-log or --mcu")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with sim:
        for name, path in sim.paths().items():
            print(f"{name} {path}", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
