"""Export stored telemetry as CSV or JSON lines, and summarize it per vehicle.

Everything here reads through the `Storage` interface, so it works on any
implementation. The summary reads the messages it needs once; for a very
large database a server-side implementation would compute the same figures
in SQL.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from edge_sdk.cloud.errors import QueryError
from edge_sdk.cloud.records import (
    KIND_REPLY,
    KIND_ESCALATION,
    KIND_RESULT,
    KIND_SCHEMAS,
    KINDS,
    MessageQuery,
    StoredMessage,
)
from edge_sdk.cloud.stats import percentiles
from edge_sdk.cloud.storage import Storage

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "jsonl")
BASE_COLUMNS = ("vehicle_id", "message_id", "kind", "topic", "seq", "t_wall", "received_at", "label", "score")


def export_messages(storage: Storage, query: MessageQuery, output: IO[str], fmt: str) -> int:
    """Write every message matching `query` to `output` as CSV or JSON lines; return the number written.

    CSV has the base columns, every kind-specific column and the body as one
    JSON string, so every stored field is in the file.
    """
    if fmt not in EXPORT_FORMATS:
        raise QueryError(f"export format {fmt!r} is unknown: expected one of {', '.join(EXPORT_FORMATS)}")
    messages = storage.query(query)
    if fmt == "jsonl":
        return _write_jsonl(messages, output)
    return _write_csv(messages, output)


def _write_jsonl(messages: Iterable[StoredMessage], output: IO[str]) -> int:
    written = 0
    for message in messages:
        output.write(json.dumps(message.to_dict(), separators=(",", ":"), sort_keys=True))
        output.write("\n")
        written += 1
    return written


def detail_columns() -> list[str]:
    """Return every kind-specific column name once, in schema order."""
    names: list[str] = []
    for schema in KIND_SCHEMAS.values():
        for column in schema.columns:
            if column.name not in names:
                names.append(column.name)
    return names


def _write_csv(messages: Iterable[StoredMessage], output: IO[str]) -> int:
    columns = [*BASE_COLUMNS, *detail_columns(), "body"]
    writer = csv.DictWriter(output, fieldnames=columns, extrasaction="raise")
    writer.writeheader()
    written = 0
    for message in messages:
        row: dict[str, Any] = {name: getattr(message, name) for name in BASE_COLUMNS}
        row.update(message.details)
        row["body"] = json.dumps(message.body, separators=(",", ":"), sort_keys=True)
        writer.writerow(row)
        written += 1
    return written


@dataclass(frozen=True, slots=True)
class VehicleSummary:
    """Counts and latency figures of one vehicle. Latencies are milliseconds.

    `edge_frames` counts per-frame results from the edge model (period
    summaries and cloud results excluded). `escalation_rate` is escalations
    per edge frame, and `replied_rate` the share of escalations with a
    successful reply stored.
    """

    vehicle_id: str
    counts: dict[str, int]
    edge_frames: int
    escalation_rate: float | None
    replied_rate: float | None
    reply_errors: int
    cloud_results: int
    inference_ms: dict[str, float | None]
    cloud_rtt_ms: dict[str, float | None]
    delivery_ms: dict[str, float | None]
    first_t_wall: float | None = None
    last_t_wall: float | None = None
    labels: dict[str, int] = field(default_factory=dict)
    cloud_labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def summarize(storage: Storage, since: float | None = None, until: float | None = None, vehicle_id: str | None = None) -> list[VehicleSummary]:
    """Return one summary per vehicle with messages in [since, until)."""
    vehicle_ids = [vehicle_id] if vehicle_id is not None else storage.vehicles()
    summaries = []
    for vid in vehicle_ids:
        accumulator = _Accumulator()
        for message in storage.query(MessageQuery(vehicle_id=vid, since=since, until=until)):
            accumulator.add(message)
        summaries.append(accumulator.summary(vid))
    return summaries


@dataclass(slots=True)
class _Accumulator:
    """Running totals of one vehicle's messages."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    edge_frames: int = 0
    cloud_results: int = 0
    reply_errors: int = 0
    inference: list[float] = field(default_factory=list)
    rtt: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    cloud_labels: Counter[str] = field(default_factory=Counter)
    escalated: set[str] = field(default_factory=set)
    replied: set[str] = field(default_factory=set)
    first: float | None = None
    last: float | None = None

    def add(self, message: StoredMessage) -> None:
        self.counts[message.kind] = self.counts.get(message.kind, 0) + 1
        self.delivery.append(message.delivery_ms)
        self.first = message.t_wall if self.first is None else min(self.first, message.t_wall)
        self.last = message.t_wall if self.last is None else max(self.last, message.t_wall)
        detail = message.details
        if message.kind == KIND_RESULT:
            self._add_result(message)
        elif message.kind == KIND_ESCALATION and detail.get("correlation_id"):
            self.escalated.add(detail["correlation_id"])
        elif message.kind == KIND_REPLY:
            if detail.get("error"):
                self.reply_errors += 1
            elif detail.get("correlation_id"):
                self.replied.add(detail["correlation_id"])

    def _add_result(self, message: StoredMessage) -> None:
        detail = message.details
        if detail.get("result_type") == "summary":
            return
        if detail.get("source") == "cloud":
            self.cloud_results += 1
            if detail.get("rtt_ms") is not None:
                self.rtt.append(detail["rtt_ms"])
            if message.label is not None:
                self.cloud_labels[message.label] += 1
            return
        self.edge_frames += 1
        if detail.get("inference_ms") is not None:
            self.inference.append(detail["inference_ms"])
        if message.label is not None:
            self.labels[message.label] += 1

    def summary(self, vehicle_id: str) -> VehicleSummary:
        escalations = self.counts[KIND_ESCALATION]
        return VehicleSummary(
            vehicle_id=vehicle_id,
            counts=dict(self.counts),
            edge_frames=self.edge_frames,
            escalation_rate=round(escalations / self.edge_frames, 4) if self.edge_frames else None,
            replied_rate=round(len(self.escalated & self.replied) / len(self.escalated), 4) if self.escalated else None,
            reply_errors=self.reply_errors,
            cloud_results=self.cloud_results,
            inference_ms=percentiles(self.inference),
            cloud_rtt_ms=percentiles(self.rtt),
            delivery_ms=percentiles(self.delivery),
            first_t_wall=self.first,
            last_t_wall=self.last,
            labels=dict(self.labels.most_common()),
            cloud_labels=dict(self.cloud_labels.most_common()),
        )
