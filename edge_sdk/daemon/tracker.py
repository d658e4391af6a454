"""Object events from per-frame detections: a greedy IoU tracker per source.

A detection is matched to the tracked object of the same label whose box
overlaps it most (intersection over union at least `iou_threshold`). An
object gets its "new" event after `min_hits` matched frames, "update" events
at most every `update_interval_s`, and its "end" event after `max_missed`
processed frames without a match. Classification results are tracked as one
whole-frame object per label.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

from edge_sdk.package.results import BoundingBox, Detection, InferenceResult


class EventKind(str, enum.Enum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """A change of one tracked object; times are Unix seconds, `duration_s` since the object's first frame."""

    kind: EventKind
    source_id: str
    object_id: int
    label: str
    score: float
    max_score: float
    box: BoundingBox | None
    frame_seq: int
    first_seen: float
    last_seen: float
    hits: int

    @property
    def duration_s(self) -> float:
        return max(0.0, self.last_seen - self.first_seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind.value,
            "source_id": self.source_id,
            "object_id": self.object_id,
            "label": self.label,
            "score": round(self.score, 5),
            "max_score": round(self.max_score, 5),
            "box": self.box.to_list() if self.box is not None else None,
            "frame_seq": self.frame_seq,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "duration_s": round(self.duration_s, 3),
            "hits": self.hits,
        }


@dataclass(slots=True)
class _Track:
    object_id: int
    label: str
    box: BoundingBox | None
    score: float
    max_score: float
    first_seen: float
    last_seen: float
    frame_seq: int
    hits: int = 1
    missed: int = 0
    announced: bool = False
    last_update: float = field(default=0.0)

    def event(self, kind: EventKind, source_id: str) -> ObjectEvent:
        return ObjectEvent(
            kind, source_id, self.object_id, self.label, self.score, self.max_score, self.box, self.frame_seq, self.first_seen, self.last_seen, self.hits
        )


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """The `[events]` settings the tracker uses; see the config reference for each."""

    labels: tuple[str, ...] = ()
    min_score: float = 0.5
    iou_threshold: float = 0.3
    min_hits: int = 2
    max_missed: int = 5
    update_interval_s: float = 2.0


class IouTracker:
    """Tracks objects of one source across its processed frames. Not thread-safe: one caller per source."""

    def __init__(self, source_id: str, settings: TrackerSettings) -> None:
        self.source_id = source_id
        self.settings = settings
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    @property
    def active(self) -> int:
        """Number of objects announced with a 'new' event and not ended yet."""
        return sum(1 for track in self._tracks if track.announced)

    def _candidates(self, result: InferenceResult) -> list[Detection]:
        wanted = set(self.settings.labels)
        if result.detections:
            items = list(result.detections)
        else:
            # Whole-frame pseudo-detections: a classifier has no boxes.
            items = [Detection(c.class_id, c.label, c.score, BoundingBox(0.0, 0.0, 1.0, 1.0)) for c in result.classifications[:1]]
        return [d for d in items if d.score >= self.settings.min_score and (not wanted or d.label in wanted)]

    def update(self, result: InferenceResult, frame_seq: int, t_wall: float) -> list[ObjectEvent]:
        """Match the result's detections to tracked objects and return the events they cause."""
        detections = self._candidates(result)
        pairs = sorted(
            (
                (track.box.iou(det.box) if track.box is not None else 1.0, t_index, d_index)
                for t_index, track in enumerate(self._tracks)
                for d_index, det in enumerate(detections)
                if track.label == det.label
            ),
            reverse=True,
        )
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        events: list[ObjectEvent] = []

        for iou, t_index, d_index in pairs:
            if iou < self.settings.iou_threshold or t_index in matched_tracks or d_index in matched_detections:
                continue
            matched_tracks.add(t_index)
            matched_detections.add(d_index)
            events.extend(self._on_match(self._tracks[t_index], detections[d_index], frame_seq, t_wall))

        for t_index, track in enumerate(self._tracks):
            if t_index not in matched_tracks:
                track.missed += 1
        events.extend(self._expire())

        for d_index, det in enumerate(detections):
            if d_index not in matched_detections:
                self._start_track(det, frame_seq, t_wall, events)
        return events

    def _on_match(self, track: _Track, det: Detection, frame_seq: int, t_wall: float) -> list[ObjectEvent]:
        track.box, track.score, track.frame_seq, track.last_seen = det.box, float(det.score), frame_seq, t_wall
        track.max_score = max(track.max_score, float(det.score))
        track.hits += 1
        track.missed = 0
        if not track.announced and track.hits >= self.settings.min_hits:
            track.announced = True
            track.last_update = t_wall
            return [track.event(EventKind.NEW, self.source_id)]
        interval = self.settings.update_interval_s
        if track.announced and interval > 0 and t_wall - track.last_update >= interval:
            track.last_update = t_wall
            return [track.event(EventKind.UPDATE, self.source_id)]
        return []

    def _start_track(self, det: Detection, frame_seq: int, t_wall: float, events: list[ObjectEvent]) -> None:
        track = _Track(next(self._ids), det.label, det.box, float(det.score), float(det.score), t_wall, t_wall, frame_seq)
        self._tracks.append(track)
        if self.settings.min_hits <= 1:
            track.announced = True
            track.last_update = t_wall
            events.append(track.event(EventKind.NEW, self.source_id))

    def _expire(self) -> list[ObjectEvent]:
        events = []
        keep = []
        for track in self._tracks:
            if track.missed > self.settings.max_missed:
                if track.announced:
                    events.append(track.event(EventKind.END, self.source_id))
            else:
                keep.append(track)
        self._tracks = keep
        return events

    def finish(self) -> list[ObjectEvent]:
        """End every announced object, for a source that ended or a daemon shutting down."""
        events = [track.event(EventKind.END, self.source_id) for track in self._tracks if track.announced]
        self._tracks = []
        return events
