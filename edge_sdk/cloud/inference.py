"""The heavier models the MaaS worker runs: a TFLite package through the runtime, or a float Keras model.

Both take a list of decoded BGR images and return one `InferenceResult` each,
so the worker batches without knowing which kind it holds. TensorFlow is
imported only when a Keras or SavedModel file is loaded.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.cloud.errors import WorkerModelError
from edge_sdk.package.manifest import InputSpec
from edge_sdk.package.results import Classification, InferenceResult

logger = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5")
DEFAULT_TOP_K = 5


class CloudModel(ABC):
    """A model run on escalated frames. `max_batch` is 1 when the model cannot run a batch at once."""

    name: str
    version: str
    max_batch: int

    @abstractmethod
    def predict_batch(self, images: list[np.ndarray]) -> list[InferenceResult]:
        """Run the model on BGR uint8 images and return one result per image, in order."""

    def close(self) -> None:
        """Release the model; safe to call twice."""

    def __enter__(self) -> CloudModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TfliteCloudModel(CloudModel):
    """A TFLite model package (or bare `.tflite`) run by `edge_sdk.runtime.Model`.

    A model whose batch dimension is dynamic runs a batch in one invoke; any
    other runs the images of a batch one after another.
    """

    def __init__(
        self, path: str | Path, *, labels: str | Path | None = None, num_threads: int | None = None, **load_options: Any
    ) -> None:
        """Load the model; `load_options` (mean, std, task, color_order, resize) go to `Model.load` for a bare `.tflite`."""
        from edge_sdk.package.errors import PackageError
        from edge_sdk.runtime import Model
        from edge_sdk.runtime.errors import RuntimeModelError

        try:
            self._model = Model.load(path, labels=labels, num_threads=num_threads, **load_options)
        except (RuntimeModelError, PackageError) as exc:
            raise WorkerModelError(f"cannot load the TFLite model {path}: {exc}") from exc
        self.name = self._model.manifest.name
        self.version = self._model.manifest.version
        self.max_batch = 64 if self._model.supports_batch else 1

    def predict_batch(self, images: list[np.ndarray]) -> list[InferenceResult]:
        return self._model.predict_batch(images)

    def close(self) -> None:
        self._model.close()


class KerasCloudModel(CloudModel):
    """A float Keras model (`.keras`, `.h5`) or SavedModel directory, preprocessed with `runtime.preprocess.normalize`.

    Preprocessing comes from `preprocessing` (keys color_order, resize, mean,
    std), else from a `training_report.json` beside the model as the models/
    recipes write it, else RGB stretch with mean 0 and std 1.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        labels: str | Path | None = None,
        name: str | None = None,
        version: str = "1",
        preprocessing: dict[str, Any] | None = None,
        max_batch: int = 32,
        top_k: int = DEFAULT_TOP_K,
    ) -> None:
        self.path = Path(path)
        self._model = _load_keras(self.path)
        # A Keras model is called directly; a bare SavedModel only through its serving signature.
        self._call = None if hasattr(self._model, "predict") else self._model.signatures["serving_default"]
        folder = self.path if self.path.is_dir() else self.path.parent
        self.labels = _read_labels(Path(labels) if labels else folder / "labels.txt")
        self.spec = _input_spec(self._model, preprocessing or _recipe_preprocessing(folder))
        self.name = name or self.path.stem
        self.version = version
        self.max_batch = max_batch
        self.top_k = top_k

    def predict_batch(self, images: list[np.ndarray]) -> list[InferenceResult]:
        from edge_sdk.runtime.preprocess import normalize

        started = time.perf_counter()
        batch = np.concatenate([normalize(image, self.spec) for image in images], axis=0)
        preprocess_ms = (time.perf_counter() - started) * 1000.0 / len(images)

        started = time.perf_counter()
        scores = self._run(batch)
        invoke_ms = (time.perf_counter() - started) * 1000.0 / len(images)
        return [self._result(row, preprocess_ms, invoke_ms, image) for row, image in zip(scores, images)]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._call is None:
            output = self._model(batch, training=False)
        else:
            outputs = self._call(batch)
            output = next(iter(outputs.values()))
        scores = np.asarray(output.numpy() if hasattr(output, "numpy") else output, dtype=np.float32)
        if scores.ndim != 2:
            raise WorkerModelError(f"model {self.path} returned scores of shape {scores.shape}: expected [batch, classes] from a classifier")
        return scores

    def _result(self, scores: np.ndarray, preprocess_ms: float, invoke_ms: float, image: np.ndarray) -> InferenceResult:
        if not np.isclose(float(scores.sum()), 1.0, atol=1e-3) or scores.min() < 0:
            scores = _softmax(scores)
        order = np.argsort(scores)[::-1][: self.top_k]
        classifications = tuple(
            Classification(int(index), self.labels[index] if index < len(self.labels) else str(index), float(scores[index])) for index in order
        )
        return InferenceResult(
            task="classification",
            model_name=self.name,
            model_version=self.version,
            classifications=classifications,
            preprocess_ms=preprocess_ms,
            invoke_ms=invoke_ms,
            frame_size=(int(image.shape[1]), int(image.shape[0])),
        )


def load_cloud_model(
    path: str | Path,
    *,
    labels: str | Path | None = None,
    num_threads: int | None = None,
    name: str | None = None,
    version: str | None = None,
    **tflite_options: Any,
) -> CloudModel:
    """Load a TFLite package, archive or `.tflite` through the runtime, or a Keras/SavedModel in float.

    `tflite_options` (mean, std, task, color_order, resize) describe a bare
    `.tflite` whose file cannot say them; a package's manifest already does.
    """
    path = Path(path)
    if not path.exists():
        raise WorkerModelError(f"model {path} not found: pass a model package, a .tflite, a .keras file or a SavedModel directory")
    is_saved_model = path.is_dir() and (path / "saved_model.pb").is_file()
    keras_in_folder = path / "model.keras" if path.is_dir() else None
    if path.suffix in KERAS_SUFFIXES or is_saved_model:
        return KerasCloudModel(path, labels=labels, name=name, version=version or "1")
    if keras_in_folder is not None and keras_in_folder.is_file() and not (path / "manifest.json").is_file():
        return KerasCloudModel(keras_in_folder, labels=labels, name=name or path.name, version=version or "1")
    model = TfliteCloudModel(path, labels=labels, num_threads=num_threads, **tflite_options)
    if name:
        model.name = name
    if version:
        model.version = version
    return model


def _load_keras(path: Path) -> Any:
    try:
        import keras
    except ImportError as exc:
        raise WorkerModelError(f"model {path} needs TensorFlow/Keras, which is not installed: pip install 'edge-sdk[convert]'") from exc
    try:
        if path.is_dir():
            import tensorflow as tf

            return tf.saved_model.load(str(path))
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        raise WorkerModelError(f"cannot load the Keras model {path}: {exc}") from exc


def _read_labels(path: Path) -> list[str]:
    if not path.is_file():
        logger.warning("no labels file at %s: results name classes by their index", path)
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def _recipe_preprocessing(folder: Path) -> dict[str, Any]:
    report = folder / "training_report.json"
    if not report.is_file():
        return {}
    try:
        return dict(json.loads(report.read_text(encoding="utf-8")).get("preprocessing") or {})
    except (json.JSONDecodeError, AttributeError) as exc:
        raise WorkerModelError(f"{report} is not valid JSON ({exc}): fix it or pass the preprocessing explicitly") from exc


def _input_spec(model: Any, preprocessing: dict[str, Any]) -> InputSpec:
    shape = _input_shape(model)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise WorkerModelError(f"model input shape {shape} is not [batch, height, width, channels] with a fixed size: export an image model")
    spec = InputSpec(
        shape=(1, int(shape[1]), int(shape[2]), int(shape[3] or 3)),
        dtype="float32",
        color_order=preprocessing.get("color_order", "RGB"),
        resize=preprocessing.get("resize", "stretch"),
        mean=tuple(float(v) for v in preprocessing.get("mean", (0.0, 0.0, 0.0))),
        std=tuple(float(v) for v in preprocessing.get("std", (1.0, 1.0, 1.0))),
    )
    spec.validate()
    return spec


def _input_shape(model: Any) -> tuple[Any, ...]:
    if hasattr(model, "inputs") and model.inputs:
        return tuple(model.inputs[0].shape)
    signature = model.signatures["serving_default"]
    spec = next(iter(signature.structured_input_signature[1].values()))
    return tuple(spec.shape)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exp = np.exp(shifted)
    return exp / exp.sum()
