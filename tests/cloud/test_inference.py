"""Loading the MaaS worker's models: a float Keras model through TensorFlow and a TFLite package through the runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cloud.errors import WorkerModelError
from edge_sdk.cloud.inference import KerasCloudModel, TfliteCloudModel, load_cloud_model

LABELS = ("red", "green", "blue")


def save_color_model(folder: Path) -> Path:
    """Save a Keras classifier with hand-set weights: the class is the RGB channel with the largest mean."""
    keras = pytest.importorskip("keras")
    from keras import layers

    inputs = keras.Input(shape=(16, 16, 3))
    pooled = layers.GlobalAveragePooling2D()(layers.Rescaling(1.0 / 255.0)(inputs))
    dense = layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([10.0 * (3.0 * np.eye(3, dtype=np.float32) - 1.0), np.zeros(3, dtype=np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    preprocessing = {"color_order": "RGB", "resize": "stretch", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    (folder / "training_report.json").write_text(json.dumps({"preprocessing": preprocessing}), encoding="utf-8")
    return folder / "model.keras"


def solid_bgr(bgr: tuple[int, int, int], height: int = 30, width: int = 40) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = bgr
    return image


def test_keras_model_runs_batch_with_recipe_preprocessing(tmp_path: Path) -> None:
    model_path = save_color_model(tmp_path / "colors")
    model = load_cloud_model(model_path, version="7")

    assert isinstance(model, KerasCloudModel)
    assert model.max_batch > 1
    assert model.name == "model"
    assert model.version == "7"
    assert model.spec.height == 16
    assert model.spec.color_order == "RGB"

    # OpenCV frames are BGR: (0, 0, 220) is red once converted to the model's RGB.
    results = model.predict_batch([solid_bgr((0, 0, 220)), solid_bgr((0, 220, 0)), solid_bgr((220, 0, 0), 50, 70)])
    assert [result.top.label for result in results] == ["red", "green", "blue"]
    assert results[0].top.score > 0.99
    assert results[2].frame_size == (70, 50)
    assert all(result.model_name == "model" for result in results)


def test_load_cloud_model_finds_keras_in_folder(tmp_path: Path) -> None:
    save_color_model(tmp_path / "signs-large")
    model = load_cloud_model(tmp_path / "signs-large")

    assert isinstance(model, KerasCloudModel)
    assert model.name == "signs-large"


def test_load_cloud_model_tflite_with_overrides() -> None:
    models = Path(__file__).resolve().parents[1] / "runtime" / "models"
    model = load_cloud_model(models / "dominant_color_uint8_zp128.tflite", labels=models / "dominant_color_labels.txt", name="colors", version="3")
    try:
        assert isinstance(model, TfliteCloudModel)
        assert model.name == "colors"
        assert model.version == "3"
        assert model.max_batch > 1
        assert model.predict_batch([solid_bgr((0, 230, 0))])[0].top.label == "green"
    finally:
        model.close()


def test_load_cloud_model_rejects_missing_and_broken(tmp_path: Path) -> None:
    with pytest.raises(WorkerModelError, match="not found"):
        load_cloud_model(tmp_path / "nothing.keras")

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"this is not a keras archive")
    with pytest.raises(WorkerModelError, match="cannot load the Keras model"):
        load_cloud_model(broken)
