import json

import cv2
import numpy as np
import pytest

from edge_sdk.package import DetectionOutputs, InputSpec, Manifest, PackageHashError, pack_archive, write_package
from edge_sdk.runtime import Model, ModelConfigError


def color_manifest(**overrides):
    values = dict(
        name="dominant-color",
        version="1.2.0",
        task="classification",
        input=InputSpec((1, 32, 32, 3), "int8", mean=(0.0,), std=(255.0,), scale=1 / 255, zero_point=-128),
        quantization="int8",
    )
    values.update(overrides)
    return Manifest(**values)


@pytest.fixture
def color_package(models_dir, tmp_path):
    model_bytes = (models_dir / "dominant_color_int8_zpm128.tflite").read_bytes()
    return write_package(tmp_path / "package", color_manifest(), model_bytes, ["red", "green", "blue"])


def blue_frame():
    frame = np.full((50, 70, 3), 40, dtype=np.uint8)
    frame[..., 0] = 230
    return frame


def test_model_loads_package_directory(color_package):
    with Model.load(color_package) as model:
        result = model.predict(blue_frame())
        assert model.manifest.name == "dominant-color"
        assert model.labels == ["red", "green", "blue"]
    assert result.top.label == "blue"
    assert (result.model_name, result.model_version) == ("dominant-color", "1.2.0")


@pytest.mark.parametrize("archive_name", ["dominant-color.tar.gz", "dominant-color.zip"])
def test_model_loads_archive_and_cleans_up(color_package, tmp_path, archive_name):
    archive = pack_archive(color_package, tmp_path / archive_name)
    model = Model.load(archive)
    extracted = model.model_path.parent
    assert extracted.is_dir()
    assert model.predict(blue_frame()).top.label == "blue"
    model.close()
    assert not extracted.exists()


def test_model_rejects_tampered_package(color_package):
    path = color_package / "model.tflite"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(PackageHashError):
        Model.load(color_package)


def test_model_rejects_manifest_of_other_model(models_dir, tmp_path):
    model_bytes = (models_dir / "dominant_color_uint8_zp128.tflite").read_bytes()
    package = write_package(tmp_path / "package", color_manifest(), model_bytes, ["red", "green", "blue"])
    with pytest.raises(ModelConfigError, match="belongs to another model"):
        Model.load(package)


def test_model_uses_tensor_quantization_over_manifest(models_dir, tmp_path):
    model_bytes = (models_dir / "dominant_color_int8_zpm128.tflite").read_bytes()
    manifest = color_manifest(input=InputSpec((1, 32, 32, 3), "int8", mean=(0.0,), std=(255.0,), scale=0.5, zero_point=3))
    package = write_package(tmp_path / "package", manifest, model_bytes, ["red", "green", "blue"])
    with Model.load(package) as model:
        assert model.input_spec.zero_point == -128
        assert model.input_spec.scale == pytest.approx(1 / 255)


def test_model_overrides_threshold_and_labels(detection_dir, tmp_path):
    model_bytes = (detection_dir / "detect.tflite").read_bytes()
    labels = (detection_dir / "COCO_labels.txt").read_text(encoding="utf-8").splitlines()
    manifest = Manifest(
        name="ssd-mobilenet",
        version="1",
        task="detection",
        input=InputSpec((1, 300, 300, 3), "uint8", mean=(128.0,), std=(128.0,), scale=1 / 128, zero_point=128),
        quantization="uint8",
        label_offset=1,
        detection=DetectionOutputs(
            boxes="TFLite_Detection_PostProcess",
            classes="TFLite_Detection_PostProcess:1",
            scores="TFLite_Detection_PostProcess:2",
            count="TFLite_Detection_PostProcess:3",
        ),
        score_threshold=0.6,
    )
    package = write_package(tmp_path / "ssd", manifest, model_bytes, labels)
    frame = cv2.imread(str(detection_dir / "road_stills" / "solidWhiteCurve.jpg"))
    with Model.load(package) as model:
        detections = model.predict(frame).detections
    assert detections
    assert all(d.score >= 0.6 for d in detections)
    assert "car" in {d.label for d in detections}
    with Model.load(package, score_threshold=0.3) as model:
        assert len(model.predict(frame).detections) > len(detections)


def test_model_rejects_manifest_naming_missing_output(detection_dir, tmp_path):
    manifest = Manifest(
        name="ssd",
        version="1",
        task="detection",
        input=InputSpec((1, 300, 300, 3), "uint8", mean=(128.0,), std=(128.0,), scale=1 / 128, zero_point=128),
        detection=DetectionOutputs(boxes="boxes", classes="classes", scores="scores", count="count"),
    )
    package = write_package(tmp_path / "ssd", manifest, (detection_dir / "detect.tflite").read_bytes(), None)
    with pytest.raises(ModelConfigError, match="names output 'boxes' as boxes"):
        Model.load(package)


def test_bare_model_manifest_describes_the_file(detection_dir):
    with Model.load(detection_dir / "detect.tflite", labels=detection_dir / "COCO_labels.txt") as model:
        manifest = model.manifest
    assert manifest.task == "detection"
    assert manifest.input.shape == (1, 300, 300, 3)
    assert manifest.input.zero_point == 128
    assert len(manifest.model_sha256) == 64
    assert json.loads(manifest.to_json())["detection"]["scores"] == "TFLite_Detection_PostProcess:2"


def test_model_reports_damaged_archive_as_archive(tmp_path):
    from edge_sdk.package import PackageError

    archive = tmp_path / "signs-1.0.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(PackageError, match="neither a tar nor a zip|damaged"):
        Model.load(archive)


def test_guessed_detection_roles_fixed_by_values(detection_dir, tmp_path):
    # Classes and scores named the wrong way round, marked as a guess: the first
    # frame with detections must swap them back (class ids are whole numbers).
    manifest = Manifest(
        name="ssd-guessed",
        version="1",
        task="detection",
        input=InputSpec((1, 300, 300, 3), "uint8", mean=(128.0,), std=(128.0,), scale=1 / 128, zero_point=128),
        label_offset=1,
        detection=DetectionOutputs(
            boxes="TFLite_Detection_PostProcess",
            classes="TFLite_Detection_PostProcess:2",
            scores="TFLite_Detection_PostProcess:1",
            count="TFLite_Detection_PostProcess:3",
        ),
        extra={"detection_roles_guessed": True},
    )
    labels = (detection_dir / "COCO_labels.txt").read_text(encoding="utf-8").splitlines()
    package = write_package(tmp_path / "ssd", manifest, (detection_dir / "detect.tflite").read_bytes(), labels)
    frame = cv2.imread(str(detection_dir / "road_stills" / "solidWhiteCurve.jpg"))
    with Model.load(package) as model:
        first = model.predict(frame).detections
        second = model.predict(frame).detections
    assert "car" in {d.label for d in first}
    assert all(0.0 <= d.score <= 1.0 for d in first)
    assert [(d.class_id, d.score) for d in first] == [(d.class_id, d.score) for d in second]
