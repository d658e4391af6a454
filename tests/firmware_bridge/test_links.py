"""SLCAN codec and commands, MCU ACK/retry, VehicleLinks over the simulator, link loss and reopen."""

from __future__ import annotations

import threading
from pathlib import Path

import can
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.candump import parse_candump_line
from firmware_bridge.errors import (BridgeConfigError, McuAckTimeoutError, McuFrameError, McuRejectedError, SlcanCommandError,
                                    SlcanError)
from firmware_bridge.link import LinkSettings, LinkState
from firmware_bridge.mcu import McuLink, McuSettings
from firmware_bridge.mcu_protocol import AckStatus, Gear, VehicleState, decode_frame, decode_payload
from firmware_bridge.mcu_protocol import encode_message as encode_mcu
from firmware_bridge.slcan import SlcanLink, SlcanSettings, decode_frame as decode_slcan, encode_frame as encode_slcan
from firmware_bridge.vehicle import VehicleLinks


def _watch_fix(links: VehicleLinks) -> threading.Event:
    """Return an event set when the GPS link delivers a record with a fix."""
    has_fix = threading.Event()

    def on_record(record: object) -> None:
        if getattr(record, "has_fix", False):
            has_fix.set()

    links.gps.on_record = on_record
    return has_fix


def _watch_vehicle_state(links: VehicleLinks) -> threading.Event:
    """Return an event set when the MCU link delivers a vehicle state to VehicleLinks."""
    received = threading.Event()
    forward = links.mcu.on_message

    def on_message(message: object) -> None:
        forward(message)
        if isinstance(message, VehicleState):
            received.set()

    links.mcu.on_message = on_message
    return received


def test_slcan_extended_flag_is_explicit() -> None:
    frame = decode_slcan(b"T000000251AB")
    assert frame.message.is_extended_id is True
    assert frame.message.arbitration_id == 0x25
    assert encode_slcan(frame.message) == b"T000000251AB\r"


def test_slcan_remote_frame_keeps_dlc() -> None:
    frame = decode_slcan(b"r7FF6")
    assert frame.message.is_remote_frame is True
    assert frame.message.dlc == 6
    assert encode_slcan(frame.message) == b"r7FF6\r"


def test_slcan_timestamp_is_optional() -> None:
    assert decode_slcan(b"t1232AABBEA5F").adapter_time_ms == 59999
    assert decode_slcan(b"t1232AABB").adapter_time_ms is None
    with pytest.raises(SlcanError, match="wrap"):
        decode_slcan(b"t1232AABBEA60")


@pytest.mark.parametrize("line", [b"t8001", b"t12390011223344556677", b"t1232AAB", b"x1230", b"T2000000000", b"t12G0"])
def test_slcan_rejects_malformed_lines(line: bytes) -> None:
    with pytest.raises(SlcanError):
        decode_slcan(line)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_slcan_decoder_raises_only_slcan_error(line: bytes) -> None:
    try:
        decode_slcan(line)
    except SlcanError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_candump_parser_raises_only_slcan_error(line: str) -> None:
    try:
        parse_candump_line(line)
    except SlcanError:
        pass


def test_candump_remote_and_extended_lines() -> None:
    record = parse_candump_line("(1.000001) can1 1ABCDEF0#R3")
    assert record.message.is_remote_frame
    assert record.message.dlc == 3
    assert record.message.is_extended_id
    with pytest.raises(SlcanError, match="CAN FD"):
        parse_candump_line("(1.0) can0 123##1AABB")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_mcu_decoder_raises_only_frame_error(block: bytes) -> None:
    try:
        decode_payload(decode_frame(block))
    except McuFrameError:
        pass


def test_slcan_bel_raises_command_error(vehicle_sim, tmp_path: Path) -> None:
    device = vehicle_sim.PtyDevice("can", tmp_path)
    adapter = vehicle_sim.SlcanAdapterSim(device, [])
    link = SlcanLink("can", LinkSettings(device.path), SlcanSettings(listen_only=False))
    try:
        adapter.start()
        link.start()
        assert link.channel_open.wait(10)
        assert link.command("V") == b"V1013"
        with pytest.raises(SlcanCommandError, match="BEL"):
            link.command("S9")
        link.send(can.Message(arbitration_id=0x123, is_extended_id=False, data=b"\x01"))
    finally:
        link.stop()
        adapter.stop_event.set()
        device.close()
        adapter.stop()
    assert "t1231" + "01" in adapter.commands


def _vehicle_state() -> VehicleState:
    return VehicleState(50.0, -12.5, Gear.DRIVE, 0)


def test_vehicle_links_snapshot_and_alert(data_dir: Path, vehicle_sim, tmp_path: Path) -> None:
    sim = vehicle_sim.VehicleSim(nmea_log=data_dir / "nmea" / "bu353s4.log", mcu=True, link_dir=tmp_path, mcu_state=_vehicle_state)
    links = VehicleLinks.from_config({"gps": {"url": sim.paths()["gps"]}, "mcu": {"url": sim.paths()["mcu"], "heartbeat_interval_s": 0.05}})
    has_fix = _watch_fix(links)
    vehicle_state = _watch_vehicle_state(links)
    try:
        links.start()
        assert links.gps.wait_open(10)
        assert links.mcu.wait_open(10)
        sim.start()
        assert has_fix.wait(10)
        assert vehicle_state.wait(10)
        links.send_alert("stop_sign", "warning", 17)
        assert sim.workers["mcu"].alert_received.wait(5)
        assert sim.workers["mcu"].heartbeat_received.wait(5)
        snapshot = links.snapshot()
        status = links.status()
    finally:
        links.stop()
        sim.stop()
    assert snapshot["gps"]["latitude"] == pytest.approx(-37.78, abs=0.01)
    assert snapshot["gps"]["age_s"] >= 0
    assert snapshot["mcu"]["speed_kmh"] == 50.0
    assert snapshot["speed"]["source"] == "mcu"
    assert sim.workers["mcu"].alerts[0].text_id == 17
    assert status["gps"]["state"] == "open"
    assert status["gps"]["checksum_errors"] == 0
    assert status["mcu"]["heartbeat_age_s"] is not None


def test_mcu_alert_retries_then_times_out(vehicle_sim, tmp_path: Path) -> None:
    device = vehicle_sim.PtyDevice("mcu", tmp_path)
    mcu = vehicle_sim.McuSim(device, drop_acks=2)
    links = VehicleLinks.from_config({"mcu": {"url": device.path, "ack_timeout_s": 0.1, "retries": 3, "heartbeat_interval_s": 0}})
    try:
        mcu.start()
        links.start()
        assert links.mcu.wait_open(10)
        links.send_alert("pedestrian", "critical", 3)
        assert links.mcu.mcu_counters.retries == 2
        assert len(mcu.alerts) == 1
        mcu.drop_acks = 10
        with pytest.raises(McuAckTimeoutError, match="did not acknowledge"):
            links.send_alert(1, 0, 4)
        mcu.drop_acks = 0
        mcu.ack_status = AckStatus.INVALID_PAYLOAD
        with pytest.raises(McuRejectedError, match="INVALID_PAYLOAD"):
            links.send_alert("lane_departure", "info", 5)
    finally:
        links.stop()
        mcu.stop_event.set()
        device.close()
        mcu.stop()


def test_link_lost_and_reopened(data_dir: Path, vehicle_sim, tmp_path: Path) -> None:
    device = vehicle_sim.PtyDevice("gps", tmp_path)
    links = VehicleLinks.from_config({"gps": {"url": device.path, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2}})
    has_fix = _watch_fix(links)
    try:
        links.start()
        assert links.gps.wait_open(10)
        device.unplug()
        assert links.gps.wait_until(lambda link: link.state is LinkState.LOST, 10)
        device.replug()
        assert links.gps.wait_until(lambda link: link.events.opens == 2, 10)
        feeder = vehicle_sim.NmeaFeeder(device, data_dir / "nmea" / "bu353s4.log")
        feeder.start()
        assert has_fix.wait(10)
        feeder.stop()
        status = links.status()["gps"]
    finally:
        links.stop()
        device.close()
    assert status["losses"] == 1
    assert status["state"] == "open"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"gps": {}}, "url is missing"),
        ({"gps": {"url": "loop://", "baud": 9600}}, "unknown key"),
        ({"radar": {}}, "unknown section"),
        ({"can": {"url": "loop://", "bitrate": 123}}, "standard rate"),
        ({"can": {"url": "loop://", "signals": {"x": "A.B"}}}, "dbc is missing"),
        ({"gps": "/dev/ttyUSB0"}, "give a table"),
        ({"mcu": {"url": "loop://", "retries": "3"}}, "retries '3' is invalid"),
        ({"mcu": {"url": "loop://", "ack_timeout_s": 0}}, "ack_timeout_s 0 is invalid"),
        ({"gps": {"url": "loop://", "baudrate": True}}, "baudrate"),
        ({"gps": {"url": "loop://", "require_checksum": "no"}}, "require_checksum"),
        ({"can": {"url": "loop://", "listen_only": 1}}, "listen_only"),
    ],
)
def test_vehicle_config_errors_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(BridgeConfigError, match=message):
        VehicleLinks.from_config(config)


def test_send_alert_rejects_unknown_kind() -> None:
    links = VehicleLinks.from_config({"mcu": {"url": "loop://"}})
    with pytest.raises(BridgeConfigError, match="alert kind 'unicorn' is unknown"):
        links.send_alert("unicorn", "info", 1)


def test_can_frame_too_short_for_dbc_is_counted(data_dir: Path) -> None:
    links = VehicleLinks.from_config({
        "can": {
            "url": "loop://",
            "dbc": str(data_dir / "can" / "toyota_rav4_2017_pt_generated.dbc"),
            "signals": {"speed": "SPEED.SPEED"},
            "speed_signal": "speed",
        }
    })
    links.can.feed(b"t0B42AABB\r")
    links.can.feed(b"t0B48000000001D0B7A5E\r")
    status = links.status()["can"]
    snapshot = links.snapshot()
    assert status["decode_errors"] == 1
    assert status["handler_errors"] == 0
    assert snapshot["can"]["speed"]["value"] == pytest.approx(29.38)
    assert snapshot["speed"]["source"] == "can"
    assert snapshot["speed"]["value_mps"] == pytest.approx(29.38 / 3.6)


def test_link_open_is_exclusive(vehicle_sim, tmp_path: Path) -> None:
    device = vehicle_sim.PtyDevice("gps", tmp_path)
    links = VehicleLinks.from_config({"gps": {"url": device.path}})
    try:
        links.start()
        assert links.gps.wait_open(10)
        with pytest.raises(serial.SerialException):
            serial.serial_for_url(device.path, exclusive=True)
    finally:
        links.stop()
        device.close()


def test_slcan_silent_adapter_times_out(vehicle_sim, tmp_path: Path) -> None:
    device = vehicle_sim.PtyDevice("can", tmp_path)
    link = SlcanLink("can", LinkSettings(device.path), SlcanSettings(command_timeout_s=0.2))
    try:
        link.start()
        assert link.wait_open(10)
        assert link.wait_until(lambda link: link.events.last_error is not None, 10)
    finally:
        link.stop()
        device.close()
    assert "did not respond to 'C'" in link.events.last_error
    assert not link.channel_open.is_set()


def test_mcu_repeated_frame_delivered_once() -> None:
    received: list[object] = []
    link = McuLink("mcu", LinkSettings("loop://"), McuSettings(heartbeat_interval_s=0), on_message=received.append)
    frame = encode_mcu(VehicleState(10.0, 1.5, Gear.REVERSE, 0), 9, ack_request=True)
    try:
        link.start()
        assert link.wait_open(10)
        link.feed(frame)
        link.feed(frame)
    finally:
        link.stop()
    assert len(received) == 1
    assert link.mcu_counters.duplicates == 1
    assert link.events.handler_errors == 0


def test_slcan_setup_rejected_is_retried(vehicle_sim, tmp_path: Path) -> None:
    class RejectingAdapter(vehicle_sim.SlcanAdapterSim):
        def _response_to(self, command: str) -> bytes:
            return b"\x07" if command.startswith("S") else b"\r"

    device = vehicle_sim.PtyDevice("can", tmp_path)
    adapter = RejectingAdapter(device, [])
    link = SlcanLink("can", LinkSettings(device.path, reconnect_initial_s=0.05, reconnect_max_s=0.1), SlcanSettings())
    try:
        adapter.start()
        link.start()
        assert link.wait_until(lambda link: link.events.losses >= 2, 10)
    finally:
        link.stop()
        adapter.stop_event.set()
        device.close()
        adapter.stop()
    assert "rejected command 'S6' with BEL" in (link.events.last_error or "")
    assert adapter.commands.count("S6") >= 2
    assert not link.channel_open.is_set()
