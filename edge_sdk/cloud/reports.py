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
    JSON string, so a spreadsheet opens it and nothing is lost.
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
    """Counts and latency figures of one vehicle. Latencies are milliseconds; rates are fractions of results."""

    vehicle_id: str
    counts: dict[str, int]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "counts": dict(self.counts),
            "escalation_rate": self.escalation_rate,
            "replied_rate": self.replied_rate,
            "reply_errors": self.reply_errors,
            "cloud_results": self.cloud_results,
            "inference_ms": dict(self.inference_ms),
            "cloud_rtt_ms": dict(self.cloud_rtt_ms),
            "delivery_ms": dict(self.delivery_ms),
            "first_t_wall": self.first_t_wall,
            "last_t_wall": self.last_t_wall,
            "labels": dict(self.labels),
        }


def summarize(storage: Storage, since: float | None = None, until: float | None = None, vehicle_id: str | None = None) -> list[VehicleSummary]:
    """Return one summary per vehicle with messages in [since, until)."""
    vehicle_ids = [vehicle_id] if vehicle_id is not None else storage.vehicles()
    return [_summarize_vehicle(storage, vid, since, until) for vid in vehicle_ids]


def _summarize_vehicle(storage: Storage, vehicle_id: str, since: float | None, until: float | None) -> VehicleSummary:
    counts = dict.fromkeys(KINDS, 0)
    inference: list[float] = []
    rtt: list[float] = []
    delivery: list[float] = []
    labels: dict[str, int] = {}
    escalated: set[str] = set()
    answered: set[str] = set()
    reply_errors = 0
    cloud_results = 0
    first: float | None = None
    last: float | None = None

    for message in storage.query(MessageQuery(vehicle_id=vehicle_id, since=since, until=until)):
        counts[message.kind] = counts.get(message.kind, 0) + 1
        delivery.append(message.delivery_ms)
        first = message.t_wall if first is None else min(first, message.t_wall)
        last = message.t_wall if last is None else max(last, message.t_wall)
        detail = message.details
        if message.kind == KIND_RESULT:
            if message.label is not None:
                labels[message.label] = labels.get(message.label, 0) + 1
            if detail.get("inference_ms") is not None:
                inference.append(detail["inference_ms"])
            if detail.get("rtt_ms") is not None:
                rtt.append(detail["rtt_ms"])
            if detail.get("source") == "cloud":
                cloud_results += 1
        elif message.kind == KIND_ESCALATION and detail.get("correlation_id"):
            escalated.add(detail["correlation_id"])
        elif message.kind == KIND_REPLY:
            if detail.get("error"):
                reply_errors += 1
            elif detail.get("correlation_id"):
                answered.add(detail["correlation_id"])

    results = counts[KIND_RESULT]
    return VehicleSummary(
        vehicle_id=vehicle_id,
        counts=counts,
        escalation_rate=round(counts[KIND_ESCALATION] / results, 4) if results else None,
        replied_rate=round(len(escalated & answered) / len(escalated), 4) if escalated else None,
        reply_errors=reply_errors,
        cloud_results=cloud_results,
        inference_ms=percentiles(inference),
        cloud_rtt_ms=percentiles(rtt),
        delivery_ms=percentiles(delivery),
        first_t_wall=first,
        last_t_wall=last,
        labels=dict(sorted(labels.items(), key=lambda item: -item[1])),
    )
