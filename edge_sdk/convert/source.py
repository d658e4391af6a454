"""Load the model to convert: a Keras model (`.keras`, `.h5`, or in memory) or a SavedModel directory.

`SourceModel` gives the converter three things: the image input shape, float
predictions for comparing against the converted model, and TFLite converters
to try in order. Edge targets need batch 1 and a static shape, so every
converter is built on a batch-1 signature. A source with a dynamic batch is
pinned to 1 with a warning.

NOTE: only image models with one 4-D input (batch, height, width, channels)
are supported. Outputs are compared in the order the source lists them.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.convert.errors import ConvertError, SourceModelError, SourceModelNotFoundError

logger = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"

# A factory returns a ready `tf.lite.TFLiteConverter`; the name goes into logs and the report.
ConverterFactory = Callable[[], Any]


@dataclass
class SourceModel:
    """A loaded source model with its input contract and ways to build TFLite converters."""

    name: str
    kind: str  # "keras" or "saved_model"
    input_shape: tuple[int, int, int]  # height, width, channels
    batch_was_dynamic: bool
    predict_fn: Callable[[np.ndarray], list[np.ndarray]]
    converter_factories: list[tuple[str, ConverterFactory]]
    _temp_dirs: list[tempfile.TemporaryDirectory] = field(default_factory=list, repr=False)

    def predict(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the float source model on a float32 batch [N, H, W, C]; one array per output."""
        return self.predict_fn(np.asarray(batch, dtype=np.float32))

    def iter_converters(self) -> Iterator[tuple[str, Any]]:
        """Yield (strategy name, fresh TFLite converter), the preferred strategy first."""
        for strategy, factory in self.converter_factories:
            yield strategy, factory()

    def close(self) -> None:
        """Delete the temporary SavedModel exports; safe to call twice."""
        while self._temp_dirs:
            self._temp_dirs.pop().cleanup()

    def __enter__(self) -> SourceModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def require_tensorflow() -> None:
    """Raise ConvertError before any work starts when TensorFlow is not installed."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ConvertError(
            "edge-sdk convert needs TensorFlow, which is not installed in this environment: "
            "pip install 'edge-sdk[convert]' on the machine that converts models (the vehicle does not need it)"
        )


def check_source_path(path: Path) -> None:
    """Raise SourceModelNotFoundError when the source model path does not exist."""
    if not path.exists():
        raise SourceModelNotFoundError(f"model {path} not found: pass a .keras or .h5 file or a SavedModel directory")


def load_source_model(source: str | Path | Any) -> SourceModel:
    """Load a `.keras`/`.h5` file, a SavedModel directory, or take a Keras model object as it is."""
    if not isinstance(source, (str, Path)):
        if hasattr(source, "inputs") or hasattr(source, "call"):
            return _from_keras(source, getattr(source, "name", "model") or "model")
        raise SourceModelError(f"source {type(source).__name__} is not a path or a Keras model: pass a .keras, .h5 or SavedModel path")

    path = Path(source)
    check_source_path(path)
    if path.is_dir():
        if not (path / SAVED_MODEL_FILE).is_file():
            raise SourceModelError(f"model {path} is a directory without {SAVED_MODEL_FILE}: pass a SavedModel directory or a .keras/.h5 file")
        return _from_saved_model(path)
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise SourceModelError(
            f"model {path} has suffix {path.suffix or '(none)'!r}: expected a Keras model ({', '.join(KERAS_SUFFIXES)}) "
            "or a SavedModel directory; convert a .tflite with `edge-sdk inspect` instead"
        )
    model = _load_keras_file(path)
    # The stem of model.keras is too generic, so reports and manifests use the Keras model's own name.
    name = getattr(model, "name", None) if path.stem == "model" else path.stem
    return _from_keras(model, name or path.stem)


def _load_keras_file(path: Path) -> Any:
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError, TypeError, KeyError, AttributeError) as exc:
        # Keras raises ValueError for a file that is not a zip or HDF5 archive and
        # TypeError/KeyError for a config it cannot rebuild (e.g. an unregistered subclass).
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceModelError(
            f"model {path} could not be loaded by Keras ({first_line}): check that it is a model saved with "
            "model.save(), and register custom layers or pass the model object to the Python API"
        ) from exc


def _from_keras(model: Any, name: str) -> SourceModel:
    import keras

    shape = _keras_input_shape(model, name)
    batch, height, width, channels = shape
    batch_was_dynamic = batch is None
    if batch not in (None, 1):
        raise SourceModelError(f"model {name} has a fixed batch of {batch}: edge targets run batch 1; rebuild the model with batch None or 1")
    if batch_was_dynamic:
        logger.warning("model %s has a dynamic batch dimension: pinning it to 1 for the edge targets", name)

    def predict(batch_array: np.ndarray) -> list[np.ndarray]:
        outputs = model(batch_array, training=False)
        return [np.asarray(out) for out in _as_list(outputs)]

    def wrapped_converter() -> Any:
        import tensorflow as tf

        inputs = keras.Input(batch_shape=(1, height, width, channels), name="image")
        wrapper = keras.Model(inputs, model(inputs), name=f"{name}_batch1")
        return tf.lite.TFLiteConverter.from_keras_model(wrapper)

    source = SourceModel(name, "keras", (height, width, channels), batch_was_dynamic, predict, [])

    def exported_converter() -> Any:
        import tensorflow as tf

        temp = tempfile.TemporaryDirectory(prefix="edge-sdk-export-")
        source._temp_dirs.append(temp)
        model.export(temp.name, format="tf_saved_model", input_signature=[tf.TensorSpec((1, height, width, channels), tf.float32)], verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(temp.name)

    source.converter_factories = [("from_keras_model", wrapped_converter), ("saved_model_export", exported_converter)]
    return source


def _keras_input_shape(model: Any, name: str) -> tuple[int | None, int, int, int]:
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if inputs is None:
        # A subclassed model has an input shape only after its first call.
        build_shape = getattr(model, "_build_shapes_dict", None) or {}
        shapes = list(build_shape.values())
        if len(shapes) != 1:
            raise SourceModelError(f"model {name} is a subclassed model that was never called: call it once on a batch of images before converting")
        # The recorded batch is whatever the first call used, not a property of the model.
        shape = (None, *tuple(shapes[0])[1:])
    else:
        if len(inputs) != 1:
            raise SourceModelError(f"model {name} has {len(inputs)} inputs: the converter handles image models with one input")
        shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(dim is None for dim in shape[1:]):
        raise SourceModelError(
            f"model {name} has input shape {shape}: expected a static (batch, height, width, channels) image input; "
            "give the Input layer a fixed height, width and channel count"
        )
    return (shape[0], int(shape[1]), int(shape[2]), int(shape[3]))


def _from_saved_model(path: Path) -> SourceModel:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise SourceModelError(f"model {path} could not be loaded as a SavedModel ({exc}): re-export it with tf.saved_model.save") from exc
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise SourceModelError(f"model {path} has no 'serving_default' signature (has {list(loaded.signatures)}): export one")
    input_specs = signature.structured_input_signature[1]
    if len(input_specs) != 1:
        raise SourceModelError(f"model {path} signature takes {len(input_specs)} inputs {sorted(input_specs)}: expected one image input")
    input_name, spec = next(iter(input_specs.items()))
    shape = tuple(spec.shape.as_list())
    if len(shape) != 4 or any(dim is None for dim in shape[1:]):
        raise SourceModelError(f"model {path} input {input_name!r} has shape {shape}: expected a static (batch, height, width, channels)")
    height, width, channels = (int(dim) for dim in shape[1:])
    batch_was_dynamic = shape[0] is None
    if batch_was_dynamic:
        logger.warning("model %s has a dynamic batch dimension: pinning it to 1 for the edge targets", path)

    def predict(batch_array: np.ndarray) -> list[np.ndarray]:
        outputs = signature(**{input_name: tf.constant(batch_array, dtype=spec.dtype)})
        return [np.asarray(outputs[key]) for key in sorted(outputs)]

    source = SourceModel(path.name, "saved_model", (height, width, channels), batch_was_dynamic, predict, [])

    def pinned_converter() -> Any:
        if not batch_was_dynamic:
            return tf.lite.TFLiteConverter.from_saved_model(str(path))
        temp = tempfile.TemporaryDirectory(prefix="edge-sdk-pinned-")
        source._temp_dirs.append(temp)
        module = tf.Module()
        module.loaded = loaded

        @tf.function(input_signature=[tf.TensorSpec((1, height, width, channels), spec.dtype, name=input_name)])
        def serve(image: Any) -> Any:
            return signature(**{input_name: image})

        module.serve = serve
        tf.saved_model.save(module, temp.name, signatures={"serving_default": serve})
        return tf.lite.TFLiteConverter.from_saved_model(temp.name)

    source.converter_factories = [("from_saved_model", pinned_converter)]
    return source


def _as_list(outputs: Any) -> list[Any]:
    if isinstance(outputs, dict):
        return [outputs[key] for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]
