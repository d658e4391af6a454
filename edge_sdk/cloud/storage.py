"""Telemetry storage: a small interface and its SQLite implementation.

`Storage` is the whole contract the ingest subscriber, the query commands and
the summary use. `SqliteStorage` keeps everything in one file in WAL mode.
Its SQL sticks to what PostgreSQL also accepts (`INSERT ... ON CONFLICT DO
NOTHING RETURNING`, plain indices, no SQLite-only functions), so a
PostgreSQL class is the same statements with `%s` placeholders, `BIGSERIAL`
row ids, `JSONB` bodies, `BYTEA` payloads and a connection pool.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edge_sdk.cloud.errors import QueryError, StorageError
from edge_sdk.cloud.records import (
    KIND_SCHEMAS,
    KIND_WORKER_STATUS,
    KINDS,
    DeadLetter,
    MessageQuery,
    StoredMessage,
    TelemetryRecord,
    details,
    headline,
    storable_body,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PAGE_ROWS = 500

_MESSAGE_COLUMNS = "row_id, vehicle_id, message_id, kind, topic, seq, t_wall, received_at, label, score, body"


class Storage(ABC):
    """The telemetry store. Implementations must be safe to call from several threads."""

    @abstractmethod
    def store(self, record: TelemetryRecord) -> bool:
        """Store one message; return False, storing nothing, when (vehicle_id, message_id) is already stored."""

    def store_many(self, records: Iterable[TelemetryRecord]) -> int:
        """Store several messages; return how many were new."""
        return sum(1 for record in records if self.store(record))

    @abstractmethod
    def store_dead_letter(self, letter: DeadLetter) -> None:
        """Keep a payload that could not be stored as a message, with the reason."""

    @abstractmethod
    def query(self, query: MessageQuery) -> Iterator[StoredMessage]:
        """Yield stored messages matching every filter of `query`, ordered by sender time."""

    @abstractmethod
    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Return dead letters, oldest first."""

    @abstractmethod
    def count(self, kind: str | None = None, vehicle_id: str | None = None) -> int:
        """Return the number of stored messages, optionally of one kind and one vehicle."""

    @abstractmethod
    def vehicles(self) -> list[str]:
        """Return the ids of every vehicle with at least one stored message, sorted; MaaS workers are not vehicles."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call twice."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _schema_statements() -> list[str]:
    statements = [
        "CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL)",
        """CREATE TABLE IF NOT EXISTS messages (
            row_id INTEGER PRIMARY KEY,
            vehicle_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            topic TEXT NOT NULL,
            seq INTEGER,
            t_wall REAL NOT NULL,
            received_at REAL NOT NULL,
            label TEXT,
            score REAL,
            body TEXT NOT NULL,
            UNIQUE (vehicle_id, message_id)
        )""",
        "CREATE INDEX IF NOT EXISTS messages_vehicle_time ON messages (vehicle_id, t_wall)",
        "CREATE INDEX IF NOT EXISTS messages_kind_time ON messages (kind, t_wall)",
        "CREATE INDEX IF NOT EXISTS messages_time ON messages (t_wall)",
        "CREATE INDEX IF NOT EXISTS messages_label ON messages (label)",
        """CREATE TABLE IF NOT EXISTS dead_letters (
            row_id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            topic TEXT NOT NULL,
            vehicle_id TEXT,
            reason TEXT NOT NULL,
            payload BLOB NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (received_at)",
    ]
    for schema in KIND_SCHEMAS.values():
        columns = ", ".join(f"{column.name} {column.sql_type}" for column in schema.columns)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {schema.table} ("
            f"message_row INTEGER PRIMARY KEY REFERENCES messages (row_id), {columns})"
        )
    statements.append("CREATE INDEX IF NOT EXISTS escalations_correlation ON escalations (correlation_id)")
    statements.append("CREATE INDEX IF NOT EXISTS replies_correlation ON replies (correlation_id)")
    return statements


class SqliteStorage(Storage):
    """Telemetry in one SQLite file (WAL mode), shared by the threads of one process under a lock.

    NOTE: several processes may open the same file, but SQLite serializes
    their writes. A fleet that needs several ingest machines needs a server
    database (see the module docstring).
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False, isolation_level=None)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._create_schema()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the telemetry database {path}: {exc}; check the path and its permissions") from exc
        logger.debug("opened telemetry database %s", self.path)

    def _create_schema(self) -> None:
        with self._transaction() as cursor:
            for statement in _schema_statements():
                cursor.execute(statement)
            row = cursor.execute("SELECT version FROM schema_info").fetchone()
            if row is None:
                cursor.execute("INSERT INTO schema_info (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has telemetry schema version {row[0]}, this edge-sdk writes version {SCHEMA_VERSION}: "
                    "use a new database file or the edge-sdk version that created it"
                )

    def _transaction(self) -> _Transaction:
        if self._closed:
            raise StorageError(f"the telemetry database {self.path} is closed: open a new SqliteStorage")
        return _Transaction(self._connection, self._lock)

    def store(self, record: TelemetryRecord) -> bool:
        if record.kind not in KINDS:
            raise QueryError(f"message kind {record.kind!r} is unknown: expected one of {', '.join(KINDS)}")
        label, score = headline(record.kind, record.body)
        body = json.dumps(storable_body(record.kind, record.body), separators=(",", ":"), sort_keys=True)
        try:
            with self._transaction() as cursor:
                row = cursor.execute(
                    "INSERT INTO messages (vehicle_id, message_id, kind, topic, seq, t_wall, received_at, label, score, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, message_id) DO NOTHING RETURNING row_id",
                    (record.vehicle_id, record.message_id, record.kind, record.topic, record.seq,
                     record.t_wall, record.received_at, label, score, body),
                ).fetchone()
                if row is None:
                    return False
                self._insert_details(cursor, row[0], record)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot store message {record.message_id} of {record.vehicle_id} in {self.path}: {exc}") from exc
        return True

    @staticmethod
    def _insert_details(cursor: sqlite3.Cursor, row_id: int, record: TelemetryRecord) -> None:
        schema = KIND_SCHEMAS[record.kind]
        values = details(record.kind, record.body)
        names = ", ".join(["message_row", *values])
        placeholders = ", ".join("?" for _ in range(len(values) + 1))
        cursor.execute(f"INSERT INTO {schema.table} ({names}) VALUES ({placeholders})", (row_id, *values.values()))

    def store_dead_letter(self, letter: DeadLetter) -> None:
        try:
            with self._transaction() as cursor:
                cursor.execute(
                    "INSERT INTO dead_letters (received_at, topic, vehicle_id, reason, payload) VALUES (?, ?, ?, ?, ?)",
                    (letter.received_at, letter.topic, letter.vehicle_id, letter.reason, bytes(letter.payload)),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot store a dead letter from {letter.topic} in {self.path}: {exc}") from exc

    def query(self, query: MessageQuery) -> Iterator[StoredMessage]:
        where, parameters = _where_clause(query)
        order = "ASC" if query.ascending else "DESC"
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM messages{where} ORDER BY t_wall {order}, row_id {order}"
        if query.limit is not None and query.limit < 0:
            raise QueryError(f"limit {query.limit} is negative: give 0 or more rows")
        last_row: tuple[Any, ...] | None = None
        emitted = 0
        # Page through the result with keyset pagination so a long export holds
        # the lock only for one page at a time and the subscriber keeps writing.
        while query.limit is None or emitted < query.limit:
            page_sql, page_parameters = _paged(sql, where, parameters, last_row, order)
            with self._transaction() as cursor:
                rows = cursor.execute(page_sql, page_parameters).fetchall()
                detail_rows = self._fetch_details(cursor, rows)
            for row in rows:
                if query.limit is not None and emitted >= query.limit:
                    return
                yield _stored_message(row, detail_rows.get(row[0], {}))
                emitted += 1
            if len(rows) < PAGE_ROWS:
                return
            last_row = rows[-1]

    @staticmethod
    def _fetch_details(cursor: sqlite3.Cursor, rows: list[tuple[Any, ...]]) -> dict[int, dict[str, Any]]:
        by_kind: dict[str, list[int]] = {}
        for row in rows:
            by_kind.setdefault(row[3], []).append(row[0])
        found: dict[int, dict[str, Any]] = {}
        for kind, row_ids in by_kind.items():
            schema = KIND_SCHEMAS.get(kind)
            if schema is None:
                continue
            names = [column.name for column in schema.columns]
            marks = ", ".join("?" for _ in row_ids)
            sql = f"SELECT message_row, {', '.join(names)} FROM {schema.table} WHERE message_row IN ({marks})"
            for detail in cursor.execute(sql, row_ids):
                found[detail[0]] = dict(zip(names, detail[1:]))
        return found

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        sql = "SELECT row_id, received_at, topic, vehicle_id, reason, payload FROM dead_letters ORDER BY row_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._transaction() as cursor:
            rows = cursor.execute(sql).fetchall()
        return [
            DeadLetter(topic=topic, payload=bytes(payload), reason=reason, received_at=received_at, vehicle_id=vehicle_id, row_id=row_id)
            for row_id, received_at, topic, vehicle_id, reason, payload in rows
        ]

    def count(self, kind: str | None = None, vehicle_id: str | None = None) -> int:
        where, parameters = _where_clause(MessageQuery(vehicle_id=vehicle_id, kind=kind))
        with self._transaction() as cursor:
            return int(cursor.execute(f"SELECT COUNT(*) FROM messages{where}", parameters).fetchone()[0])

    def vehicles(self) -> list[str]:
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT DISTINCT vehicle_id FROM messages WHERE kind <> ? ORDER BY vehicle_id", (KIND_WORKER_STATUS,))
            return [row[0] for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._connection.close()
        logger.debug("closed telemetry database %s", self.path)


class _Transaction:
    """Hold the storage lock and run one BEGIN ... COMMIT, rolling back on error."""

    def __init__(self, connection: sqlite3.Connection, lock: threading.Lock) -> None:
        self._connection = connection
        self._lock = lock

    def __enter__(self) -> sqlite3.Cursor:
        self._lock.acquire()
        try:
            self._cursor = self._connection.cursor()
            self._cursor.execute("BEGIN")
        except BaseException:
            self._lock.release()
            raise
        return self._cursor

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            self._connection.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._cursor.close()
            self._lock.release()


def _where_clause(query: MessageQuery) -> tuple[str, list[Any]]:
    if query.kind is not None and query.kind not in KINDS:
        raise QueryError(f"kind {query.kind!r} is unknown: expected one of {', '.join(KINDS)}")
    if query.since is not None and query.until is not None and query.since > query.until:
        raise QueryError(f"the time range starts at {query.since} after it ends at {query.until}: swap since and until")
    filters = (
        ("vehicle_id = ?", query.vehicle_id),
        ("kind = ?", query.kind),
        ("t_wall >= ?", query.since),
        ("t_wall < ?", query.until),
        ("label = ?", query.label),
    )
    clauses = [clause for clause, value in filters if value is not None]
    parameters = [value for _, value in filters if value is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


def _paged(sql: str, where: str, parameters: list[Any], last_row: tuple[Any, ...] | None, order: str) -> tuple[str, list[Any]]:
    """Add the keyset condition after `last_row` and the page size to a query ordered by (t_wall, row_id)."""
    if last_row is None:
        return f"{sql} LIMIT {PAGE_ROWS}", parameters
    comparison = ">" if order == "ASC" else "<"
    keyset = f"(t_wall {comparison} ? OR (t_wall = ? AND row_id {comparison} ?))"
    joined = f"{where} AND {keyset}" if where else f" WHERE {keyset}"
    base = sql.replace(f"FROM messages{where} ORDER", f"FROM messages{joined} ORDER", 1)
    return f"{base} LIMIT {PAGE_ROWS}", [*parameters, last_row[6], last_row[6], last_row[0]]


def _stored_message(row: tuple[Any, ...], detail: dict[str, Any]) -> StoredMessage:
    row_id, vehicle_id, message_id, kind, topic, seq, t_wall, received_at, label, score, body = row
    return StoredMessage(
        row_id=row_id,
        vehicle_id=vehicle_id,
        message_id=message_id,
        kind=kind,
        topic=topic,
        seq=seq,
        t_wall=t_wall,
        received_at=received_at,
        label=label,
        score=score,
        details=detail,
        body=json.loads(body),
    )
