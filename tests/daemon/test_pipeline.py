"""Pipeline stages with the real detector and clip: frame-rate limit and several sources on shared or own models."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from edge_sdk.daemon.config import load_config
from edge_sdk.daemon.pipeline import InferenceWorker, PipelineMetrics, Processed, SourceFinished, SourceSlot
from edge_sdk.daemon.service import Daemon
from edge_sdk.runtime import Model
from edge_sdk.sources import make_source
from tests.daemon.support import Collector, write_config


@pytest.fixture(scope="module")
def detector(data_dir: Path):
    with Model.load(data_dir / "detection" / "detect.tflite", labels=data_dir / "detection" / "COCO_labels.txt", label_offset=1, num_threads=1) as model:
        yield model


@pytest.fixture
def short_clip(data_dir: Path, tmp_path: Path) -> Path:
    """The first third of the real clip (64 decodable frames), to keep multi-source runs short."""
    data = (data_dir / "video" / "solidWhiteRight.mp4").read_bytes()
    path = tmp_path / "short.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


def run_worker(detector, slots: list[SourceSlot]) -> list[object]:
    items: queue.Queue[object] = queue.Queue()
    stop = threading.Event()
    worker = InferenceWorker("detector", detector, slots, items, stop, PipelineMetrics())
    for slot in slots:
        slot.source.start()
    worker.start()
    try:
        assert worker.join(120), "inference worker did not finish"
    finally:
        stop.set()
        for slot in slots:
            slot.source.close()
    return [items.get_nowait() for _ in range(items.qsize())]


def test_fps_limit_spaces_inference(detector, short_clip: Path) -> None:
    fps_limit = 20.0
    source = make_source("file", "front", path=short_clip, pace="fast")
    items = run_worker(detector, [SourceSlot(source, fps_limit)])
    processed = [item for item in items if isinstance(item, Processed)]
    assert len(processed) > 3
    # Each frame becomes due at least one period after the previous one was due.
    starts = [item.t_infer_start for item in processed]
    for count in range(1, len(starts)):
        assert starts[count] - starts[0] >= count / fps_limit - 1e-6
    assert isinstance(items[-1], SourceFinished)
    assert source.stats().dropped > 0


def test_shared_model_serves_sources_in_turn(detector, short_clip: Path) -> None:
    sources = [make_source("file", name, path=short_clip, pace="lockstep") for name in ("front", "rear")]
    items = run_worker(detector, [SourceSlot(source) for source in sources])
    processed = [item for item in items if isinstance(item, Processed)]
    finished = [item for item in items if isinstance(item, SourceFinished)]
    assert {item.source_id for item in finished} == {"front", "rear"}
    for name in ("front", "rear"):
        seqs = [item.frame.seq for item in processed if item.frame.source_id == name]
        assert seqs == list(range(len(seqs)))
        assert len(seqs) == sources[0].stats().captured
    # Fairness counts from the moment both sources have a frame, because one may take longer to open.
    both_open = max(next(i for i, item in enumerate(processed) if item.frame.source_id == name) for name in ("front", "rear"))
    order = [item.frame.source_id for item in processed[both_open : both_open + 20]]
    assert order.count("front") >= 8, f"sources not served in turn: {order}"
    assert order.count("rear") >= 8, f"sources not served in turn: {order}"


def test_daemon_sources_with_own_and_shared_models(tmp_path: Path, data_dir: Path, short_clip: Path, mosquitto) -> None:
    collector = Collector(mosquitto.host, mosquitto.port).start()
    extra = f"""
[models.second]
path = "{data_dir / 'detection' / 'detect.tflite'}"
labels = "{data_dir / 'detection' / 'COCO_labels.txt'}"
label_offset = 1
num_threads = 1

[[sources]]
id = "rear"
kind = "file"
path = "{short_clip}"
pace = "lockstep"
model = "detector"

[[sources]]
id = "side"
kind = "file"
path = "{short_clip}"
pace = "lockstep"
model = "second"
"""
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", extra=extra)
    config.write_text(config.read_text().replace(str(data_dir / "video" / "solidWhiteRight.mp4"), str(short_clip)))
    daemon = Daemon(load_config(config))
    try:
        assert daemon.run() == 0
        frames_per_source = daemon._sources["front"].stats().captured
        assert collector.wait_for(lambda c: len(c.frames()) >= 3 * frames_per_source, 30)
    finally:
        collector.stop()

    by_source: dict[str, list[dict]] = {}
    for message in collector.frames():
        by_source.setdefault(message["body"]["source_id"], []).append(message["body"])
    assert set(by_source) == {"front", "rear", "side"}
    for name, bodies in by_source.items():
        assert [b["frame_seq"] for b in bodies] == list(range(frames_per_source)), name
    assert {b["model_name"] for b in by_source["front"] + by_source["rear"]} == {"detector"}
    assert {b["model_name"] for b in by_source["side"]} == {"second"}
    assert len(daemon._workers) == 2


def test_daemon_publish_settings_select_results(tmp_path: Path, data_dir: Path, short_clip: Path, mosquitto) -> None:
    collector = Collector(mosquitto.host, mosquitto.port).start()
    extra = """
[publish]
results = "detections"
results_every_n = 2
events = false
summary_interval_s = 0

[events]
min_score = 0.6
"""
    config = write_config(tmp_path / "vehicle.toml", data_dir, mosquitto.port, spool=tmp_path / "spool.sqlite", extra=extra)
    config.write_text(config.read_text().replace(str(data_dir / "video" / "solidWhiteRight.mp4"), str(short_clip)))
    daemon = Daemon(load_config(config))
    try:
        assert daemon.run() == 0
        published = daemon.metrics.counters.get("results_published")
        assert collector.wait_for(lambda c: any(m["body"].get("state") == "offline" for m in c.of_kind("status")), 30)
        assert collector.wait_for(lambda c: len(c.frames()) >= published, 30)
    finally:
        collector.stop()

    frames = collector.frames()
    assert 0 < len(frames) == published
    assert published + daemon.metrics.counters.get("results_skipped") == daemon._sources["front"].stats().captured
    for message in frames:
        body = message["body"]
        assert body["frame_seq"] % 2 == 0
        assert max(d["score"] for d in body["result"]["detections"]) >= 0.6
    assert collector.of_kind("events") == []
    assert not [m for m in collector.of_kind("results") if m["body"]["type"] == "summary"]
