"""SQLite spool: order, size limit with drop policy, persistence, corrupt files, file lock and shrinking."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.transport.errors import SpoolCorruptError, SpoolError, SpoolLockedError
from edge_sdk.transport.spool import VACUUM_AFTER_BYTES, Spool
from tests.conftest import REPO_ROOT
from edge_sdk.transport.topics import Priority


def _put(spool: Spool, name: str, priority: Priority, size: int = 10) -> int | None:
    return spool.put(f"fleet/car/{name}", name.encode().ljust(size, b"."), priority=int(priority), kind=name)


def test_spool_peek_orders_priority_then_insertion(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        frame = _put(spool, "escalations", Priority.FRAME)
        result_1 = _put(spool, "results", Priority.RESULT)
        event = _put(spool, "events", Priority.EVENT)
        result_2 = _put(spool, "results", Priority.RESULT)
        assert [m.id for m in spool.peek(10)] == [event, result_1, result_2, frame]
        assert [m.id for m in spool.peek(10, exclude=[event, result_1])] == [result_2, frame]
        assert [m.id for m in spool.peek(2)] == [event, result_1]


def test_spool_drops_lowest_priority_first(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_messages=3) as spool:
        _put(spool, "escalations", Priority.FRAME)
        result = _put(spool, "results", Priority.RESULT)
        event = _put(spool, "events", Priority.EVENT)
        newest_event = _put(spool, "events", Priority.EVENT)
        assert newest_event is not None
        assert spool.depth == 3
        assert spool.dropped() == {"escalations": 1}
        newer_result = _put(spool, "results", Priority.RESULT)
        assert spool.dropped() == {"escalations": 1, "results": 1}
        remaining = [m.id for m in spool.peek(10)]
        assert remaining == [event, newest_event, newer_result]
        assert result not in remaining


def test_spool_drops_new_message_below_all_others(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_messages=2) as spool:
        _put(spool, "events", Priority.EVENT)
        _put(spool, "results", Priority.RESULT)
        assert _put(spool, "escalations", Priority.FRAME) is None
        assert spool.depth == 2
        assert spool.dropped() == {"escalations": 1}
        assert spool.stats()["dropped_total"] == 1


def test_spool_byte_limit_drops_to_fit(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db", max_bytes=100) as spool:
        for _ in range(4):
            _put(spool, "escalations", Priority.FRAME, size=25)
        assert spool.size_bytes == 100
        assert _put(spool, "events", Priority.EVENT, size=50) is not None
        assert spool.size_bytes == 100
        assert spool.dropped() == {"escalations": 2}
        assert _put(spool, "events", Priority.EVENT, size=101) is None
        assert spool.dropped() == {"escalations": 2, "events": 1}


def test_spool_keeps_messages_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        first = spool.put("fleet/car/results", b"one", qos=2, retain=True, properties={"ContentType": "application/json"})
        spool.put("fleet/car/results", b"two")
        spool.remove([first])
    with Spool(path) as reopened:
        assert reopened.depth == 1
        assert reopened.size_bytes == 3
        (message,) = reopened.peek(10)
        assert message.payload == b"two"
        assert message.qos == 1
        assert reopened.put("fleet/car/results", b"three") > message.id


def test_spool_remove_counts_only_existing_rows(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        kept = spool.put("t/a/results", b"x")
        assert spool.remove([kept, 9999]) == 1
        assert spool.remove([kept]) == 0
        assert spool.depth == 0


def test_spool_moves_corrupt_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    garbage = b"this is not an SQLite database" * 200
    path.write_bytes(garbage)
    with pytest.raises(SpoolCorruptError) as info:
        Spool(path)
    error = info.value
    assert str(path) in str(error)
    assert error.moved_to in str(error)
    assert Path(error.moved_to).read_bytes() == garbage
    assert not path.exists()
    with Spool(path) as fresh:
        assert fresh.depth == 0


def test_spool_recover_corrupt_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"\x00garbage" * 1000)
    with Spool(path, recover_corrupt=True) as spool:
        moved_to = spool.stats()["corrupt_moved_to"]
        assert moved_to is not None
        assert Path(moved_to).is_file()
        assert spool.put("t/a/results", b"x") is not None


def test_spool_rejects_invalid_limits(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="max_messages"):
        Spool(tmp_path / "a.db", max_messages=0)
    with pytest.raises(SpoolError, match="synchronous"):
        Spool(tmp_path / "b.db", synchronous="SOMETIMES")


def test_spool_close_is_idempotent(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.close()
    spool.close()
    with pytest.raises(SpoolError, match="closed"):
        spool.put("t/a/results", b"x")


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def test_spool_shrinks_after_draining(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        ids = [spool.put("v/1/frames", bytes(16 * 1024)) for _ in range(1000)]
        full = _disk_bytes(path)
        for start in range(0, len(ids), 100):
            spool.remove(ids[start:start + 100])
        spool._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        drained = _disk_bytes(path)

    assert full > 16 * 1024 * 1000
    assert drained < VACUUM_AFTER_BYTES + 1024 * 1024


def test_spool_upgrades_file_without_auto_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE unrelated (x INTEGER)")
    old.close()

    with Spool(path) as spool:
        mode = spool._db().execute("PRAGMA auto_vacuum").fetchone()[0]

    assert mode == 2


def test_spool_second_open_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as first:
        first.put("v/1/results", b"kept")
        with pytest.raises(SpoolLockedError, match=f"pid {os.getpid()}"):
            Spool(path)
        assert first.depth == 1

    with Spool(path) as reopened:
        assert reopened.depth == 1


def test_spool_lock_held_by_other_process(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from edge_sdk.transport.spool import Spool; s = Spool(sys.argv[1]); print('ready', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(SpoolLockedError, match=f"pid {holder.pid}"):
            Spool(path)
    finally:
        holder.kill()
        holder.wait(10)

    with Spool(path) as after:
        assert after.depth == 0
