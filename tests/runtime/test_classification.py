import cv2
import numpy as np
import pytest

from edge_sdk.runtime import Model
from edge_sdk.runtime.labels import read_labels
from edge_sdk.runtime.preprocess import resize_frame
from tests.runtime.conftest import bare_invoke, bare_output_details

CASES = [("parrot.jpg", "macaw"), ("grace_hopper.bmp", "military uniform"), ("cat.bmp", "Egyptian cat")]


@pytest.fixture(scope="module")
def mobilenet(coral_dir):
    with Model.load(coral_dir / "mobilenet_v2_1.0_224_quant.tflite", labels=coral_dir / "imagenet_labels.txt") as model:
        yield model


@pytest.mark.parametrize("image_name, expected", CASES)
def test_mobilenet_top1_matches_bare_interpreter(mobilenet, coral_dir, image_name, expected):
    frame = cv2.imread(str(coral_dir / image_name))
    result = mobilenet.predict(frame)

    pixels, _ = resize_frame(frame, mobilenet.input_spec)
    raw = bare_invoke(mobilenet.model_path, pixels[np.newaxis])[0][0]
    scale, zero_point = bare_output_details(mobilenet.model_path)[0]["quantization"]
    bare_scores = (raw.astype(np.float32) - zero_point) * scale
    bare_top = int(np.argmax(bare_scores))
    labels = read_labels(coral_dir / "imagenet_labels.txt")

    assert result.top.label == expected
    assert labels[bare_top] == expected
    assert result.top.class_id == bare_top
    assert abs(result.top.score - float(bare_scores[bare_top])) <= 0.05


def test_mobilenet_uses_pixel_fast_path(mobilenet):
    assert mobilenet.feeds_pixels_directly
    assert mobilenet.input_spec.zero_point == 128


def test_mobilenet_top_k_sorted_scores_in_unit_range(mobilenet, coral_dir):
    result = mobilenet.predict(cv2.imread(str(coral_dir / "cat.bmp")))
    scores = [item.score for item in result.classifications]
    assert len(scores) == 5
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert len({item.class_id for item in result.classifications}) == 5


def test_result_serializes_to_json_and_back(mobilenet, coral_dir):
    import json

    from edge_sdk.package.results import InferenceResult

    result = mobilenet.predict(cv2.imread(str(coral_dir / "parrot.jpg")))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["classifications"][0]["label"] == "macaw"
    assert data["frame_size"] == [result.frame_size[0], result.frame_size[1]]
    assert InferenceResult.from_dict(data).top.label == "macaw"


def test_mobilenet_v1_gray_frame_runs(coral_dir):
    with Model.load(coral_dir / "mobilenet_v1_0.25_128_quant.tflite", labels=coral_dir / "imagenet_labels.txt") as model:
        gray = cv2.imread(str(coral_dir / "parrot.jpg"), cv2.IMREAD_GRAYSCALE)
        result = model.predict(gray)
    assert result.top is not None
    assert result.frame_size == (gray.shape[1], gray.shape[0])
