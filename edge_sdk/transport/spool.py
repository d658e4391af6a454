"""Durable outgoing queue (store-and-forward) in SQLite, WAL mode.

`MqttClient` writes every QoS >= 1 message here before handing it to paho,
and deletes it only when the broker acknowledges it (PUBACK for QoS 1,
PUBCOMP for QoS 2). After a crash or restart the remaining rows are sent
again, so delivery is at least once.

Order: `peek()` returns rows by priority (highest first), then in insertion
order, so events go before results and results before escalation frames,
and messages of one priority keep their order.

Size limit: when a new message would exceed `max_messages` or `max_bytes`,
the oldest rows of the lowest priority not above the new message's are
dropped until it fits. When only higher-priority rows remain, the new
message itself is dropped. Every drop is counted per kind.

Durability: `synchronous="NORMAL"` (the default) survives a killed process,
but a power cut may lose the last commits. `"FULL"` also survives a power
cut, at the cost of one fsync per message.

Thread-safe: one connection guarded by a lock. One `Spool` per file: the
file `<path>.lock` is locked with flock while it is open, so a second daemon
configured with the same path fails at start instead of sending the first
one's messages twice.

Disk space: the database uses incremental auto-vacuum, and after about
`VACUUM_AFTER_BYTES` of acknowledged payload the free pages go back to the
file system. The WAL file is cut back to `WAL_SIZE_LIMIT` after checkpoints.
So a spool that filled during a long outage shrinks again once it drains.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.transport.errors import SpoolCorruptError, SpoolError, SpoolLockedError

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
VACUUM_AFTER_BYTES = 4 * 1024 * 1024
WAL_SIZE_LIMIT = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    properties TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_send_order ON messages (priority DESC, id);
CREATE INDEX IF NOT EXISTS messages_drop_order ON messages (priority, id);
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """One queued message; `created` is Unix time of the `put`, `properties` a JSON-safe dict or None."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    priority: int
    kind: str
    properties: dict[str, Any] | None
    created: float


class Spool:
    """SQLite-backed priority queue of outgoing messages with a size limit.

    `path` is a file (created with its folder) or `":memory:"` for a queue
    that does not survive the process. A file that is not a readable SQLite
    database is moved aside to `<path>.corrupt-<unix time>`. Then
    `SpoolCorruptError` is raised. With `recover_corrupt` the error is
    logged instead, and an empty spool is started.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_messages: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        synchronous: str = "NORMAL",
        recover_corrupt: bool = False,
    ) -> None:
        if max_messages < 1:
            raise SpoolError(f"spool max_messages must be >= 1, got {max_messages}")
        if max_bytes < 1:
            raise SpoolError(f"spool max_bytes must be >= 1, got {max_bytes}")
        if synchronous.upper() not in _SYNCHRONOUS_MODES:
            raise SpoolError(f"spool synchronous mode {synchronous!r} is invalid: use one of {', '.join(_SYNCHRONOUS_MODES)}")
        self.path = str(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._corrupt_moved_to: str | None = None
        self._removed_since_vacuum = 0
        self._lock_file = self._acquire_file_lock()
        try:
            self._conn: sqlite3.Connection | None = self._open(recover_corrupt)
        except BaseException:
            self._release_file_lock()
            raise
        self._count, self._bytes = self._measure()
        if self._count:
            logger.info("spool %s opened with %d messages (%d bytes) to send", self.path, self._count, self._bytes)

    @classmethod
    def in_memory(cls, **kwargs: Any) -> Spool:
        """Return a spool that lives only as long as the process (no store-and-forward across restarts)."""
        return cls(MEMORY, **kwargs)

    # --- opening --------------------------------------------------------------------------------

    def _acquire_file_lock(self) -> Any:
        """Lock `<path>.lock` for as long as this spool is open; return the open lock file (None in memory)."""
        if self.path == MEMORY:
            return None
        if sys.platform == "win32":
            # NOTE: no lock on Windows; two processes on one spool file would send its messages twice.
            return None
        import fcntl

        lock_path = f"{self.path}.lock"
        try:
            Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a+", encoding="ascii")  # noqa: SIM115 - held open until close()
        except OSError as exc:
            raise SpoolError(f"cannot create spool lock file {lock_path}: {exc}; check the permissions of its folder") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SpoolLockedError(
                f"spool {self.path} is in use by another process (pid {holder}): give each daemon its own spool.path, "
                "or stop the other process first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release_file_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the flock
            self._lock_file = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            if self.path != MEMORY:
                self._enable_incremental_vacuum(conn)
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.warning("spool %s: SQLite did not switch to WAL mode (journal mode is %s), so writes are slower", self.path, mode)
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.executescript(_SCHEMA)
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check reported: {row[0] if row else 'nothing'}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_incremental_vacuum(self, conn: sqlite3.Connection) -> None:
        """Switch the file to incremental auto-vacuum; a spool written before this needs one full VACUUM."""
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            return
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        has_tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0
        if has_tables:
            logger.info("spool %s: rewriting the file once so that it can shrink after messages are sent", self.path)
            conn.execute("VACUUM")

    def _open(self, recover_corrupt: bool) -> sqlite3.Connection:
        if self.path != MEMORY:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpoolError(f"cannot create the folder of spool file {self.path}: {exc}") from exc
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if self.path == MEMORY or isinstance(exc, sqlite3.OperationalError) and not Path(self.path).is_file():
                raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
            moved_to = self._move_aside()
            message = (
                f"spool file {self.path} is not a readable SQLite database ({exc}); it was moved aside to {moved_to} "
                f"and nothing was deleted: messages in it are not sent. Inspect or delete {moved_to}; "
                "the next start uses a new empty spool"
            )
            if not recover_corrupt:
                raise SpoolCorruptError(message, self.path, moved_to) from exc
            logger.error("%s (recover_corrupt is set, starting with an empty spool now)", message)
            self._corrupt_moved_to = moved_to
            return self._connect()

    def _move_aside(self) -> str:
        moved_to = f"{self.path}.corrupt-{int(time.time())}"
        try:
            os.replace(self.path, moved_to)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, moved_to + suffix)
        except OSError as exc:
            raise SpoolError(f"spool file {self.path} is corrupt and could not be moved aside to {moved_to}: {exc}; move or delete it by hand") from exc
        return moved_to

    def _measure(self) -> tuple[int, int]:
        row = self._db().execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()
        return int(row[0]), int(row[1])

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise SpoolError(f"spool {self.path} is closed")
        return self._conn

    # --- queue operations -----------------------------------------------------------------------

    def put(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        priority: int = 20,
        kind: str = "other",
        properties: dict[str, Any] | None = None,
    ) -> int | None:
        """Store one message; return its id, or None when the size limit made it the one to drop."""
        size = len(payload)
        props_json = None if properties is None else json.dumps(properties, separators=(",", ":"))
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                fits = self._make_room(db, size, priority)
                cursor = None
                if fits:
                    cursor = db.execute(
                        "INSERT INTO messages (priority, kind, topic, payload, qos, retain, properties, created) VALUES (?,?,?,?,?,?,?,?)",
                        (int(priority), kind, topic, sqlite3.Binary(payload), qos, int(retain), props_json, time.time()),
                    )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self._count, self._bytes = self._measure()
                raise SpoolError(f"cannot write to spool {self.path}: {exc}; check free disk space and permissions") from exc
            if cursor is None:
                self._count_drop(kind, topic, "it has the lowest priority in a full spool")
                return None
            self._count += 1
            self._bytes += size
            return int(cursor.lastrowid or 0)

    def _make_room(self, db: sqlite3.Connection, size: int, priority: int) -> bool:
        if size > self.max_bytes:
            return False
        while self._count + 1 > self.max_messages or self._bytes + size > self.max_bytes:
            victim = db.execute(
                "SELECT id, kind, topic, LENGTH(payload) FROM messages WHERE priority <= ? ORDER BY priority, id LIMIT 1",
                (int(priority),),
            ).fetchone()
            if victim is None:
                return False
            db.execute("DELETE FROM messages WHERE id = ?", (victim[0],))
            self._count -= 1
            self._bytes -= int(victim[3])
            self._count_drop(victim[1], victim[2], "the spool is full and a message of equal or higher priority arrived")
        return True

    def _count_drop(self, kind: str, topic: str, reason: str) -> None:
        self._dropped[kind] += 1
        total = sum(self._dropped.values())
        # Log the first drop and then every 100th, so a long outage does not flood the log.
        if total == 1 or total % 100 == 0:
            logger.warning(
                "spool %s dropped a %s message on %s because %s (%d dropped so far; limits %d messages, %d bytes)",
                self.path, kind, topic, reason, total, self.max_messages, self.max_bytes,
            )

    def peek(self, limit: int, exclude: Collection[int] = ()) -> list[SpooledMessage]:
        """Return up to `limit` rows in send order, skipping ids in `exclude` (already in flight)."""
        excluded = list(exclude)
        placeholders = ",".join("?" * len(excluded))
        where = f"WHERE id NOT IN ({placeholders})" if excluded else ""
        sql = f"SELECT id, topic, payload, qos, retain, priority, kind, properties, created FROM messages {where} ORDER BY priority DESC, id LIMIT ?"
        with self._lock:
            rows = self._db().execute(sql, (*excluded, int(limit))).fetchall()
        return [
            SpooledMessage(
                id=row[0], topic=row[1], payload=bytes(row[2]), qos=row[3], retain=bool(row[4]),
                priority=row[5], kind=row[6], properties=None if row[7] is None else json.loads(row[7]), created=row[8],
            )
            for row in rows
        ]

    def remove(self, ids: Iterable[int]) -> int:
        """Delete acknowledged rows; return how many existed (a row dropped meanwhile is not counted)."""
        id_list = list(ids)
        if not id_list:
            return 0
        placeholders = ",".join("?" * len(id_list))
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN")
                row = db.execute(
                    f"SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages WHERE id IN ({placeholders})", id_list
                ).fetchone()
                db.execute(f"DELETE FROM messages WHERE id IN ({placeholders})", id_list)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise SpoolError(f"cannot delete acknowledged messages from spool {self.path}: {exc}") from exc
            removed = int(row[0])
            self._count -= removed
            self._bytes -= int(row[1])
            self._removed_since_vacuum += int(row[1])
            if self._removed_since_vacuum >= VACUUM_AFTER_BYTES:
                self._release_free_pages(db)
        return removed

    def _release_free_pages(self, db: sqlite3.Connection) -> None:
        """Give free pages back to the file system; a failure only costs disk space, so it is logged."""
        self._removed_since_vacuum = 0
        if self.path == MEMORY:
            return
        try:
            # executescript runs the pragma to the end, and execute() would free one page per call.
            db.executescript("PRAGMA incremental_vacuum;")
        except sqlite3.Error as exc:
            logger.warning("spool %s: could not release free pages (%s); the file keeps its size until the next try", self.path, exc)

    # --- state ----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Number of messages not yet acknowledged."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Total payload bytes of the messages not yet acknowledged."""
        return self._bytes

    def dropped(self) -> dict[str, int]:
        """Messages dropped by the size limit since this object was opened, per kind."""
        with self._lock:
            return dict(self._dropped)

    def stats(self) -> dict[str, Any]:
        dropped = self.dropped()
        return {
            "path": self.path,
            "depth": self._count,
            "bytes": self._bytes,
            "max_messages": self.max_messages,
            "max_bytes": self.max_bytes,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "corrupt_moved_to": self._corrupt_moved_to,
        }

    def close(self) -> None:
        """Close the database; safe to call twice. Unsent messages stay in the file."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._release_file_lock()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
