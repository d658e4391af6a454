"""SqliteStorage and the reports on top of it, on a real database file."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from edge_sdk.cloud.errors import QueryError, StorageError
from edge_sdk.cloud.records import (
    KIND_REPLY,
    KIND_ESCALATION,
    KIND_EVENT,
    KIND_RESULT,
    KIND_STATUS,
    DeadLetter,
    MessageQuery,
    TelemetryRecord,
)
from edge_sdk.cloud.reports import export_messages, summarize
from edge_sdk.cloud.storage import PAGE_ROWS, SqliteStorage


def inference(label: str, score: float, invoke_ms: float = 4.0) -> dict:
    return {
        "task": "classification",
        "model": {"name": "signs", "version": "1"},
        "timing_ms": {"preprocess": 1.0, "invoke": invoke_ms, "postprocess": 0.5},
        "classifications": [{"class_id": 1, "label": label, "score": score}, {"class_id": 2, "label": "other", "score": 0.01}],
    }


def result_body(label: str, score: float, invoke_ms: float = 4.0) -> dict:
    """An edge frame result as the daemon publishes it."""
    return {"type": "frame", "source": "edge", "frame_id": 1, "result": inference(label, score, invoke_ms)}


def cloud_body(edge_label: str, cloud_label: str, rtt_ms: float) -> dict:
    """A cloud reply merged into a frame result as the daemon publishes it."""
    return {
        "type": "frame",
        "source": "cloud",
        "correlation_id": "c1",
        "edge": inference(edge_label, 0.3),
        "cloud": inference(cloud_label, 0.8),
        "worker_id": "w1",
        "rtt_ms": rtt_ms,
    }


def record(vehicle: str, message_id: str, kind: str, t_wall: float, body: dict, seq: int = 0) -> TelemetryRecord:
    return TelemetryRecord(
        vehicle_id=vehicle,
        message_id=message_id,
        kind=kind,
        topic=f"fleet/{vehicle}/{kind}",
        t_wall=t_wall,
        received_at=t_wall + 0.05,
        body=body,
        seq=seq,
    )


@pytest.fixture
def storage(tmp_path: Path):
    with SqliteStorage(tmp_path / "telemetry.db") as store:
        yield store


def fill(storage: SqliteStorage) -> None:
    storage.store(record("car-1", "m1", KIND_RESULT, 100.0, result_body("stop", 0.9)))
    storage.store(record("car-1", "m2", KIND_RESULT, 101.0, result_body("yield", 0.3, invoke_ms=8.0)))
    storage.store(record("car-1", "m3", KIND_ESCALATION, 101.1, {"correlation_id": "c1", "frame_id": 7, "image_jpeg": "QUJD" * 100, "edge_result": inference("yield", 0.3)}))
    storage.store(record("car-1", "m4", KIND_REPLY, 101.3, {"correlation_id": "c1", "worker_id": "w1", "model": {"name": "big", "version": "2"}, "result": inference("stop", 0.8)}))
    storage.store(record("car-1", "m5", KIND_RESULT, 101.4, cloud_body("yield", "stop", rtt_ms=210.0)))
    storage.store(record("car-1", "m6", KIND_RESULT, 102.0, {"type": "summary", "source_id": "front", "frames": 2}))
    storage.store(record("car-2", "m1", KIND_EVENT, 102.0, {"type": "object", "event": "new", "label": "stop", "score": 0.9}))
    storage.store(record("car-2", "m2", KIND_STATUS, 103.0, {"state": "online"}))


def test_storage_drops_duplicate_message_ids(storage: SqliteStorage) -> None:
    first = storage.store(record("car-1", "m1", KIND_RESULT, 100.0, result_body("stop", 0.9)))
    again = storage.store(record("car-1", "m1", KIND_RESULT, 100.0, result_body("stop", 0.9)))
    other_vehicle = storage.store(record("car-2", "m1", KIND_RESULT, 100.0, result_body("stop", 0.9)))

    assert first is True
    assert again is False
    assert other_vehicle is True
    assert storage.count() == 2
    assert storage.count(kind=KIND_RESULT, vehicle_id="car-1") == 1


def test_storage_query_filters_and_details(storage: SqliteStorage) -> None:
    fill(storage)

    stops = list(storage.query(MessageQuery(label="stop", kind=KIND_RESULT)))
    assert [m.message_id for m in stops] == ["m1", "m5"]
    assert stops[1].details["source"] == "cloud"
    assert stops[1].details["rtt_ms"] == 210.0
    assert stops[0].details["inference_ms"] == pytest.approx(5.5)

    window = list(storage.query(MessageQuery(vehicle_id="car-1", since=101.0, until=101.35)))
    assert [m.kind for m in window] == [KIND_RESULT, KIND_ESCALATION, KIND_REPLY]

    escalation = window[1]
    assert "image_jpeg" not in escalation.body
    assert escalation.details["image_bytes"] == 300
    assert escalation.details["correlation_id"] == "c1"

    newest = list(storage.query(MessageQuery(ascending=False, limit=2)))
    assert [m.t_wall for m in newest] == [103.0, 102.0]


def test_storage_query_pages_through_many_rows(storage: SqliteStorage) -> None:
    total = PAGE_ROWS * 2 + 17
    storage.store_many(record("car-1", f"m{i}", KIND_RESULT, 1000.0 + (i // 3), result_body("stop", 0.5)) for i in range(total))

    ids = [m.message_id for m in storage.query(MessageQuery())]
    assert len(ids) == total
    assert len(set(ids)) == total

    descending = [m.message_id for m in storage.query(MessageQuery(ascending=False))]
    assert descending == ids[::-1]
    assert len(list(storage.query(MessageQuery(limit=PAGE_ROWS + 3)))) == PAGE_ROWS + 3


def test_storage_rejects_invalid_queries(storage: SqliteStorage) -> None:
    with pytest.raises(QueryError, match="unknown"):
        list(storage.query(MessageQuery(kind="photos")))
    with pytest.raises(QueryError, match="swap since and until"):
        list(storage.query(MessageQuery(since=10.0, until=5.0)))
    with pytest.raises(QueryError, match="negative"):
        list(storage.query(MessageQuery(limit=-1)))


def test_storage_keeps_dead_letters(storage: SqliteStorage) -> None:
    storage.store_dead_letter(DeadLetter(topic="fleet/car-1/results", payload=b"\xff\x00garbage", reason="not JSON", received_at=5.0, vehicle_id="car-1"))

    letters = storage.dead_letters()
    assert len(letters) == 1
    assert letters[0].payload == b"\xff\x00garbage"
    assert letters[0].reason == "not JSON"
    assert storage.count() == 0


def test_storage_reopens_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "db" / "telemetry.db"
    with SqliteStorage(path) as store:
        fill(store)
    with SqliteStorage(path) as store:
        assert store.count() == 8
        assert store.vehicles() == ["car-1", "car-2"]


def test_storage_closed_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    store = SqliteStorage(tmp_path / "telemetry.db")
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.count()


def test_storage_concurrent_writers(storage: SqliteStorage) -> None:
    def write(worker: int) -> None:
        for i in range(200):
            storage.store(record("car-1", f"m{i % 150}", KIND_RESULT, float(i), result_body("stop", 0.5)))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storage.count() == 150


def test_export_csv_and_jsonl_round_trip(storage: SqliteStorage) -> None:
    fill(storage)

    text = io.StringIO()
    written = export_messages(storage, MessageQuery(vehicle_id="car-1"), text, "csv")
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert written == 6
    assert [row["message_id"] for row in rows] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert rows[3]["worker_id"] == "w1"
    assert json.loads(rows[0]["body"])["result"]["classifications"][0]["label"] == "stop"
    assert rows[4]["source"] == "cloud"
    assert rows[4]["label"] == "stop"

    lines = io.StringIO()
    assert export_messages(storage, MessageQuery(kind=KIND_EVENT), lines, "jsonl") == 1
    event = json.loads(lines.getvalue())
    assert event["event_type"] == "new"
    assert event["vehicle_id"] == "car-2"

    with pytest.raises(QueryError, match="parquet"):
        export_messages(storage, MessageQuery(), io.StringIO(), "parquet")


def test_summary_counts_rates_and_latencies(storage: SqliteStorage) -> None:
    fill(storage)

    summaries = {s.vehicle_id: s for s in summarize(storage)}
    car = summaries["car-1"]
    assert car.counts[KIND_RESULT] == 4
    assert car.edge_frames == 2
    assert car.cloud_results == 1
    assert car.counts[KIND_ESCALATION] == 1
    assert car.escalation_rate == 0.5
    assert car.replied_rate == 1.0
    assert car.inference_ms["p50"] == pytest.approx(7.5)
    assert car.cloud_rtt_ms["p50"] == 210.0
    assert car.delivery_ms["p50"] == pytest.approx(50.0)
    assert car.labels == {"stop": 1, "yield": 1}
    assert car.cloud_labels == {"stop": 1}

    idle = summaries["car-2"]
    assert idle.escalation_rate is None
    assert idle.counts[KIND_STATUS] == 1
