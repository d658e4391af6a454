import cv2
import numpy as np
import pytest

from edge_sdk.package.results import BoundingBox
from edge_sdk.runtime import Model
from edge_sdk.runtime.preprocess import resize_frame
from edge_sdk.runtime.tensors import OutputTensor, classes_look_like_scores, find_detection_outputs
from tests.runtime.conftest import bare_invoke, bare_output_details


@pytest.fixture(scope="module")
def detector(detection_dir):
    with Model.load(detection_dir / "detect.tflite", labels=detection_dir / "COCO_labels.txt") as model:
        yield model


def road_stills(detection_dir):
    return sorted((detection_dir / "road_stills").glob("*.jpg"))


def bare_cars(model_path, pixels, threshold=0.5):
    """Car scores from the bare interpreter, reading outputs by the op's own output names."""
    outputs = bare_invoke(model_path, pixels[np.newaxis])
    by_name = {detail["name"]: value for detail, value in zip(bare_output_details(model_path), outputs)}
    classes = by_name["TFLite_Detection_PostProcess:1"][0]
    scores = by_name["TFLite_Detection_PostProcess:2"][0]
    count = int(by_name["TFLite_Detection_PostProcess:3"][0])
    return [float(s) for c, s in zip(classes[:count], scores[:count]) if int(c) == 2 and s >= threshold]  # COCO id 2 is car


def test_detect_finds_cars_where_bare_interpreter_does(detector, detection_dir):
    stills_with_cars = 0
    for path in road_stills(detection_dir):
        frame = cv2.imread(str(path))
        pixels, _ = resize_frame(frame, detector.input_spec)
        expected = bare_cars(detector.model_path, pixels)
        cars = [d for d in detector.predict(frame).detections if d.label == "car" and d.score >= 0.5]
        assert bool(cars) == bool(expected), path.name
        if expected:
            stills_with_cars += 1
            assert abs(max(d.score for d in cars) - max(expected)) <= 0.05, path.name
    assert stills_with_cars >= 1


def test_detect_boxes_inside_frame_and_sorted(detector, detection_dir):
    for path in road_stills(detection_dir):
        frame = cv2.imread(str(path))
        height, width = frame.shape[:2]
        result = detector.predict(frame)
        assert result.frame_size == (width, height)
        scores = [d.score for d in result.detections]
        assert scores == sorted(scores, reverse=True)
        for detection in result.detections:
            box = detection.box
            assert 0.0 <= box.x1 < box.x2 <= width, path.name
            assert 0.0 <= box.y1 < box.y2 <= height, path.name
            assert detection.score >= 0.5


def test_detect_labels_follow_offset(detector, detection_dir):
    labels = (detection_dir / "COCO_labels.txt").read_text(encoding="utf-8").splitlines()
    assert detector.manifest.label_offset == 1
    for path in road_stills(detection_dir):
        for detection in detector.predict(cv2.imread(str(path))).detections:
            assert detection.label == labels[detection.class_id + 1]


def test_detect_cars_sit_in_lower_half(detector, detection_dir):
    # The stills are dashcam views: cars are on the road, below the horizon line at mid-height.
    frame = cv2.imread(str(detection_dir / "road_stills" / "solidWhiteRight.jpg"))
    cars = [d for d in detector.predict(frame).detections if d.label == "car"]
    assert cars
    assert all(d.box.y1 > frame.shape[0] * 0.4 for d in cars)


def test_detect_threshold_override_filters(detection_dir):
    frame = cv2.imread(str(detection_dir / "road_stills" / "solidWhiteCurve.jpg"))
    with Model.load(detection_dir / "detect.tflite", labels=detection_dir / "COCO_labels.txt", score_threshold=0.7) as model:
        detections = model.predict(frame).detections
    assert detections
    assert all(d.score >= 0.7 for d in detections)


def outputs_in_order(order, names):
    shapes = {"boxes": (1, 10, 4), "classes": (1, 10), "scores": (1, 10), "count": (1,)}
    return [OutputTensor(names[role], index, shapes[role], 0.0, 0) for index, role in enumerate(order)]


@pytest.mark.parametrize(
    "order",
    [
        ("boxes", "classes", "scores", "count"),
        ("scores", "boxes", "count", "classes"),
        ("count", "scores", "classes", "boxes"),
    ],
)
def test_detection_outputs_found_by_name_not_position(order):
    names = {"boxes": "StatefulPartitionedCall:1", "classes": "detection_classes", "scores": "detection_scores", "count": "num_detections"}
    found, named = find_detection_outputs(outputs_in_order(order, names))
    assert named
    assert (found.boxes, found.classes, found.scores, found.count) == (names["boxes"], names["classes"], names["scores"], names["count"])


def test_detection_outputs_use_postprocess_suffixes():
    names = {"boxes": "TFLite_Detection_PostProcess", "classes": "TFLite_Detection_PostProcess:1",
             "scores": "TFLite_Detection_PostProcess:2", "count": "TFLite_Detection_PostProcess:3"}
    found, named = find_detection_outputs(outputs_in_order(("count", "scores", "boxes", "classes"), names))
    assert named
    assert found.classes == "TFLite_Detection_PostProcess:1"
    assert found.scores == "TFLite_Detection_PostProcess:2"


def test_detection_outputs_use_signature_names():
    names = {"boxes": "StatefulPartitionedCall:0", "classes": "StatefulPartitionedCall:1",
             "scores": "StatefulPartitionedCall:2", "count": "StatefulPartitionedCall:3"}
    outputs = outputs_in_order(("boxes", "scores", "classes", "count"), names)
    signature = {1: "output_scores", 2: "output_classes"}
    found, named = find_detection_outputs(outputs, signature)
    assert named
    assert found.scores == "StatefulPartitionedCall:2"
    assert found.classes == "StatefulPartitionedCall:1"


def test_detection_outputs_without_names_are_flagged():
    names = {"boxes": "Identity", "classes": "Identity_1", "scores": "Identity_2", "count": "Identity_3"}
    found, named = find_detection_outputs(outputs_in_order(("boxes", "scores", "classes", "count"), names))
    assert not named
    assert found.boxes == "Identity"
    assert found.count == "Identity_3"


def test_classification_outputs_are_not_detection():
    assert find_detection_outputs([OutputTensor("probabilities", 0, (1, 1001), 0.0, 0)]) is None


def test_value_check_spots_swapped_classes_and_scores():
    assert classes_look_like_scores(np.array([0.9, 0.7, 0.2]), np.array([2.0, 0.0, 17.0]))
    assert not classes_look_like_scores(np.array([2.0, 0.0, 17.0]), np.array([0.9, 0.7, 0.2]))
    assert not classes_look_like_scores(np.array([]), np.array([]))


def test_letterbox_boxes_match_padded_frame(detection_dir):
    """Letterboxing a frame must give the boxes that stretching the same frame, padded by hand, gives."""
    frame = cv2.imread(str(detection_dir / "road_stills" / "solidWhiteCurve.jpg"))
    height, width = frame.shape[:2]
    top = (width - height) // 2
    padded = np.zeros((width, width, 3), dtype=np.uint8)
    padded[top : top + height] = frame
    labels = detection_dir / "COCO_labels.txt"
    with Model.load(detection_dir / "detect.tflite", labels=labels, resize="letterbox", score_threshold=0.4) as letterboxed, \
            Model.load(detection_dir / "detect.tflite", labels=labels, score_threshold=0.4) as stretched:
        from_letterbox = letterboxed.predict(frame).detections
        from_padding = stretched.predict(padded).detections
    assert from_letterbox
    for detection in from_letterbox[:3]:
        box = detection.box
        assert 0.0 <= box.y1 < box.y2 <= height
        shifted = [BoundingBox(d.box.x1, d.box.y1 - top, d.box.x2, d.box.y2 - top) for d in from_padding if d.label == detection.label]
        best = max(shifted, key=box.iou)
        # The two inputs differ by resize rounding only, so boxes move by a few pixels at most.
        assert box.iou(best) > 0.6
        assert abs((box.y1 + box.y2) / 2 - (best.y1 + best.y2) / 2) < 4.0
