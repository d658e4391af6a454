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

import codecs
import contextlib
import importlib.util
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.convert.errors import ConvertError, SourceModelError, SourceModelNotFoundError

logger = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # local file header, or the end record of an empty archive
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock, so its signature may sit at 0, 512, 1024, 2048, ... bytes.
HDF5_MAX_USER_BLOCK = 1 << 20
# TF_CPP_MIN_LOG_LEVEL per -v count: 2 hides TensorFlow's C++ INFO and WARNING lines, 1 hides INFO, 0 shows all.
TF_CPP_LOG_LEVEL_BY_VERBOSITY = ("2", "1", "0")
# Lines the TFLite converter (TensorFlow 2.21) writes to file descriptor 2 on every conversion, logged at DEBUG:
# C++ INFO lines ("I0000 00:00:... reader.cc:83] Reading SavedModel from ...") and the quantizer's settings.
NATIVE_NOISE = re.compile(
    r"I\d{4} [\d:.]+ +\d+ \S+:\d+\]|fully_quantize: \d|WARNING: All log messages before absl::InitializeLog\(\)"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate|To enable the following instructions: "
)

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
        """Yield (strategy name, fresh TFLite converter), the preferred strategy first.

        Each converter's `convert()` sends what TensorFlow prints to the DEBUG log instead of the terminal.
        """
        for strategy, factory in self.converter_factories:
            converter = factory()
            converter.convert = _logging_output(converter.convert, f"{self.name} ({strategy})")
            yield strategy, converter

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


def quiet_tensorflow_logging(verbosity: int = 0) -> None:
    """Keep TensorFlow's start-up and progress logging off the terminal unless -v or -vv requests it.

    For the command line only, because it changes the process environment.
    TF_CPP_MIN_LOG_LEVEL takes effect only when set before TensorFlow is
    imported, and a value the user set is kept. TensorFlow's and absl's Python
    loggers are held at WARNING (DEBUG with -vv), so their warnings and errors still show.
    """
    level = TF_CPP_LOG_LEVEL_BY_VERBOSITY[min(max(verbosity, 0), len(TF_CPP_LOG_LEVEL_BY_VERBOSITY) - 1)]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    if "tensorflow" in sys.modules:
        logger.debug("TensorFlow was imported before convert started, so TF_CPP_MIN_LOG_LEVEL has no effect")
    for name in ("tensorflow", "absl"):
        python_logger = logging.getLogger(name)
        python_logger.setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
        if not any(isinstance(existing, _RetracingFilter) for existing in python_logger.filters):
            python_logger.addFilter(_RetracingFilter())


class _RetracingFilter(logging.Filter):
    """Drop TensorFlow's tf.function retracing warnings unless the logger is at DEBUG.

    They concern the speed of the float model during evaluation, which the user of convert cannot change.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "triggered tf.function retracing" not in record.getMessage():
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


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
    check_keras_signature(path)
    model = _load_keras_file(path)
    # The stem of model.keras is too generic, so reports and manifests use the Keras model's own name.
    name = getattr(model, "name", None) if path.stem == "model" else path.stem
    return _from_keras(model, name or path.stem)


def check_keras_signature(path: Path) -> None:
    """Raise SourceModelError when a `.keras` file is not a zip archive or an `.h5`/`.hdf5` file is not HDF5.

    Keras reports such a file as "File not found" although it exists, so the
    signature is read before the file reaches Keras.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
            is_hdf5 = _has_hdf5_signature(handle, path.stat().st_size)
    except OSError as exc:
        raise SourceModelError(f"model {path} could not be read ({exc}): check the file's permissions") from exc
    is_zip = head.startswith(ZIP_SIGNATURES)
    suffix = path.suffix.lower()
    if (suffix == ".keras" and is_zip) or (suffix != ".keras" and is_hdf5):
        return

    if suffix == ".keras":
        rule = "a .keras file is a zip archive (it starts with the bytes 'PK')"
    else:
        rule = f"a {suffix} file is an HDF5 file (it starts with the bytes '\\x89HDF')"
    if is_hdf5:
        action = f"This file is HDF5, so rename it to {path.with_suffix('.h5').name}"
    elif is_zip:
        action = f"This file is a zip archive, so rename it to {path.with_suffix('.keras').name}"
    else:
        action = "Pass the file written by model.save('model.keras') or model.save('model.h5'), or a SavedModel directory"
    raise SourceModelError(f"model {path} is not a Keras model file: {rule}, but this file {_describe_start(head)}. {action}")


def _has_hdf5_signature(handle: io.BufferedReader, size: int) -> bool:
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size and offset <= HDF5_MAX_USER_BLOCK:
        handle.seek(offset)
        if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def _describe_start(head: bytes) -> str:
    """Describe the first bytes of a file for an error message: empty, text, or hex bytes."""
    if not head:
        return "is empty"
    # An incremental decoder accepts a character cut off at the end of the 64 bytes.
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = None
    if text and all(char.isprintable() or char in "\t\r\n" for char in text):
        first_line = text.strip().splitlines()[0] if text.strip() else text
        return f"starts with the text {first_line[:40]!r}"
    return f"starts with the bytes {head[:8].hex(' ')}"


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


def _logging_output(convert: Callable[[], bytes], label: str) -> Callable[[], bytes]:
    """Wrap a TFLite converter's `convert()` so the progress lines TensorFlow prints go to the DEBUG log.

    Keras' `model.export`, which `from_keras_model` calls, prints the exported
    signature ("Saved artifact at ...") to stdout. The C++ converter writes
    lines such as "fully_quantize: 0, inference_type: 6" straight to file
    descriptor 2. Lines matching `NATIVE_NOISE` go to DEBUG, and every other
    line written to descriptor 2 is written back to stderr unchanged once the
    conversion returns.
    """

    def convert_logged() -> bytes:
        printed = io.StringIO()
        with warnings.catch_warnings(), capture_native_stderr(label), contextlib.redirect_stdout(printed):
            # The int8 converter warns about missing input statistics although the
            # representative dataset supplies them.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            try:
                return convert()
            finally:
                if printed.getvalue().strip():
                    logger.debug("TensorFlow output while converting %s:\n%s", label, printed.getvalue().rstrip())

    return convert_logged


@contextlib.contextmanager
def capture_native_stderr(label: str) -> Iterator[None]:
    """Capture file descriptor 2 into a temporary file, then log the noise and write the rest back."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            captured.seek(0)
            _replay_native_output(captured.read().decode("utf-8", errors="replace"), label)


def _replay_native_output(text: str, label: str) -> None:
    shown = []
    for line in text.splitlines():
        if NATIVE_NOISE.match(line):
            logger.debug("TensorFlow while converting %s: %s", label, line)
        elif line.strip():
            shown.append(line)
    if shown:
        sys.stderr.write("\n".join(shown) + "\n")
        sys.stderr.flush()


def _from_keras(model: Any, name: str) -> SourceModel:
    import keras

    shape = _keras_input_shape(model, name)
    batch, height, width, channels = shape
    batch_was_dynamic = batch is None
    if batch not in (None, 1):
        raise SourceModelError(f"model {name} has a fixed batch of {batch}: edge targets run batch 1; rebuild the model with batch None or 1")
    if batch_was_dynamic:
        # INFO, not WARNING: the pipeline puts the same fact into the report's warnings, which the CLI prints.
        logger.info("model %s has a dynamic batch dimension: pinning it to 1 for the edge targets", name)

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
        logger.info("model %s has a dynamic batch dimension: pinning it to 1 for the edge targets", path)

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
