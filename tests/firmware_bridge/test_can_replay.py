"""The real RAV4 CAN minute replayed as SLCAN over a pseudo-terminal, decoded with the DBC."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from firmware_bridge.candump import read_candump_log
from firmware_bridge.dbc import DbcDecoder
from firmware_bridge.link import LinkSettings
from firmware_bridge.slcan import SlcanFrame, SlcanLink, SlcanSettings

KMH_TO_MPS = 1 / 3.6
SIGNALS = {
    "steering_angle": ["STEER_ANGLE_SENSOR.STEER_ANGLE", "STEER_ANGLE_SENSOR.STEER_FRACTION"],
    "wheel_fl": "WHEEL_SPEEDS.WHEEL_SPEED_FL",
    "wheel_fr": "WHEEL_SPEEDS.WHEEL_SPEED_FR",
    "wheel_rl": "WHEEL_SPEEDS.WHEEL_SPEED_RL",
    "wheel_rr": "WHEEL_SPEEDS.WHEEL_SPEED_RR",
}


def test_can_replay_over_pty_reproduces_reference(data_dir: Path, vehicle_sim, tmp_path: Path) -> None:
    can_dir = data_dir / "can"
    records = list(read_candump_log(can_dir / "rav4_2017_bus0_dbc_ids.candump.log"))
    decoder = DbcDecoder(can_dir / "toyota_rav4_2017_pt_generated.dbc", SIGNALS, clock=lambda: 0.0)
    received: list[SlcanFrame] = []
    steering: list[tuple[int | None, float]] = []
    wheels: list[tuple[int | None, list[float]]] = []
    all_received = threading.Event()

    def on_frame(frame: SlcanFrame) -> None:
        received.append(frame)
        for value in decoder.process(frame.message):
            if value.name == "steering_angle":
                steering.append((frame.adapter_time_ms, value.value))
        if frame.message.arbitration_id == 0xAA:
            latest = decoder.latest()
            wheels.append((frame.adapter_time_ms, [latest[name].value for name in ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")]))
        if len(received) == len(records):
            all_received.set()

    device = vehicle_sim.PtyDevice("can", tmp_path)
    adapter = vehicle_sim.SlcanAdapterSim(device, records, speed=0.0)
    link = SlcanLink("can", LinkSettings(str(device.path)), SlcanSettings(bitrate=500000), on_frame=on_frame)
    try:
        adapter.start()
        link.start()
        assert all_received.wait(90), f"received {len(received)} of {len(records)} frames"
        assert link.status()["channel_open"] is True
    finally:
        link.stop()
        adapter.stop_event.set()
        device.close()
        adapter.stop()

    assert adapter.commands[:3] == ["C", "S6", "L"]
    assert link.status()["channel_open"] is False
    assert link.counters.frame_errors == 0
    assert [frame.message.arbitration_id for frame in received] == [record.message.arbitration_id for record in records]

    reference_t = np.load(can_dir / "reference_signals" / "steering_angle_t.npy")
    reference_v = np.load(can_dir / "reference_signals" / "steering_angle_value.npy")
    assert len(steering) == len(reference_t)
    # The adapter timestamp (ms within the minute) matches the reference time of each sample
    # to its 1 ms resolution.
    assert _max_ms_difference([ms for ms, _ in steering], reference_t) <= 1
    assert np.array_equal(np.array([value for _, value in steering]), reference_v)

    wheel_t = np.load(can_dir / "reference_signals" / "wheel_speed_t.npy")
    wheel_v = np.load(can_dir / "reference_signals" / "wheel_speed_value.npy")
    assert len(wheels) == len(wheel_t)
    assert _max_ms_difference([ms for ms, _ in wheels], wheel_t) <= 1
    # The reference is in m/s: the DBC's km/h times 1/3.6.
    assert np.array_equal(np.array([values for _, values in wheels]) * KMH_TO_MPS, wheel_v)


def _max_ms_difference(adapter_ms: list[int | None], reference_t: np.ndarray) -> int:
    difference = (np.array(adapter_ms) - np.round(reference_t * 1000).astype(np.int64)) % 60000
    return int(np.minimum(difference, 60000 - difference).max())
