"""The IoU tracker that turns per-frame detections into new/update/end events."""

from __future__ import annotations

from edge_sdk.daemon.tracker import EventKind, IouTracker, TrackerSettings
from edge_sdk.package.results import BoundingBox, Classification, Detection, InferenceResult


def detections(*items: tuple[str, float, tuple[float, float, float, float]]) -> InferenceResult:
    return InferenceResult(
        task="detection",
        model_name="m",
        model_version="1",
        detections=tuple(Detection(1, label, score, BoundingBox(*box)) for label, score, box in items),
    )


CAR = ("car", 0.8, (100, 100, 200, 200))
CAR_MOVED = ("car", 0.9, (110, 105, 210, 205))
CAR_ELSEWHERE = ("car", 0.8, (600, 100, 700, 200))


def kinds(events) -> list[str]:
    return [e.kind.value for e in events]


def test_tracker_new_after_min_hits() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=2, update_interval_s=0))
    assert tracker.update(detections(CAR), 0, 0.0) == []
    events = tracker.update(detections(CAR_MOVED), 1, 0.04)
    assert kinds(events) == ["new"]
    assert events[0].label == "car"
    assert events[0].hits == 2
    assert events[0].max_score == 0.9


def test_tracker_end_after_max_missed() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=1, max_missed=2, update_interval_s=0))
    new = tracker.update(detections(CAR), 0, 0.0)
    assert kinds(new) == ["new"]
    assert tracker.update(detections(), 1, 0.04) == []
    assert tracker.update(detections(), 2, 0.08) == []
    ended = tracker.update(detections(), 3, 0.12)
    assert kinds(ended) == ["end"]
    assert ended[0].object_id == new[0].object_id
    assert tracker.active == 0


def test_tracker_unannounced_object_ends_silently() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=3, max_missed=1))
    tracker.update(detections(CAR), 0, 0.0)
    assert tracker.update(detections(), 1, 0.04) == []
    assert tracker.update(detections(), 2, 0.08) == []


def test_tracker_update_respects_interval() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=1, update_interval_s=1.0))
    tracker.update(detections(CAR), 0, 0.0)
    assert tracker.update(detections(CAR_MOVED), 1, 0.5) == []
    assert kinds(tracker.update(detections(CAR), 2, 1.0)) == ["update"]
    assert tracker.update(detections(CAR_MOVED), 3, 1.5) == []


def test_tracker_separates_distant_boxes_and_labels() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=1))
    first = tracker.update(detections(CAR, CAR_ELSEWHERE), 0, 0.0)
    assert kinds(first) == ["new", "new"]
    person_same_place = ("person", 0.8, CAR[2])
    second = tracker.update(detections(CAR, CAR_ELSEWHERE, person_same_place), 1, 0.04)
    assert kinds(second) == ["new"]
    assert second[0].label == "person"
    assert len({e.object_id for e in first + second}) == 3


def test_tracker_ignores_low_scores_and_other_labels() -> None:
    tracker = IouTracker("front", TrackerSettings(labels=("car",), min_score=0.5, min_hits=1))
    assert tracker.update(detections(("car", 0.3, CAR[2]), ("truck", 0.9, CAR_ELSEWHERE[2])), 0, 0.0) == []


def test_tracker_finish_ends_announced_objects() -> None:
    tracker = IouTracker("front", TrackerSettings(min_hits=1))
    tracker.update(detections(CAR, CAR_ELSEWHERE), 0, 0.0)
    ended = tracker.finish()
    assert kinds(ended) == ["end", "end"]
    assert tracker.finish() == []


def test_tracker_classification_is_whole_frame_object() -> None:
    tracker = IouTracker("cab", TrackerSettings(min_hits=1, max_missed=1))
    result = InferenceResult(task="classification", model_name="m", model_version="1", classifications=(Classification(14, "stop", 0.9),))
    events = tracker.update(result, 0, 0.0)
    assert kinds(events) == ["new"]
    assert events[0].label == "stop"
    assert tracker.update(result, 1, 0.1) == []
    assert events[0].kind is EventKind.NEW
