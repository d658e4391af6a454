"""The interpreter backends the runtime can use, imported only when chosen.

All three expose the same Python API (`Interpreter`, `load_delegate`):
ai-edge-litert (the maintained LiteRT wheel), tflite-runtime (its last wheel
is 2.14, built for numpy 1.x) and TensorFlow's own `tf.lite`, which is a
last resort because it imports all of TensorFlow.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edge_sdk.runtime.errors import BackendUnavailableError

logger = logging.getLogger(__name__)

BACKEND_ENV_VAR = "EDGE_SDK_BACKEND"


@dataclass(frozen=True, slots=True)
class Backend:
    """One interpreter backend: where its `Interpreter` and `load_delegate` live."""

    name: str
    interpreter_module: str
    delegate_module: str
    pip_package: str
    # True when the backend runs the FlatBuffer verifier before building the
    # interpreter. Without it a corrupt file can crash the process, so such
    # files are first loaded in a child process (see `probe`).
    verifies_models: bool = False

    def load(self) -> tuple[Any, Any]:
        """Import the backend; return its `Interpreter` class and `load_delegate` function."""
        try:
            interpreter_module: ModuleType = importlib.import_module(self.interpreter_module)
            delegate_module: ModuleType = importlib.import_module(self.delegate_module)
        except ImportError as exc:
            raise BackendUnavailableError(
                f"interpreter backend {self.name!r} cannot be imported ({exc}): pip install {self.pip_package}"
            ) from exc
        return interpreter_module.Interpreter, delegate_module.load_delegate


BACKENDS: dict[str, Backend] = {
    # Verification seen with ai-edge-litert 2.3 (a corrupt file raises "not a valid
    # Flatbuffer"); tflite-runtime 2.14 crashed on the same file, and tf.lite 2.21 loaded it.
    "ai_edge_litert": Backend(
        "ai_edge_litert", "ai_edge_litert.interpreter", "ai_edge_litert.interpreter", "ai-edge-litert", verifies_models=True
    ),
    "tflite_runtime": Backend("tflite_runtime", "tflite_runtime.interpreter", "tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": Backend("tensorflow", "tensorflow.lite", "tensorflow.lite.experimental", "tensorflow-cpu"),
}
AUTO_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")

# Other spellings users type for the same backends.
_ALIASES = {
    "litert": "ai_edge_litert",
    "ai-edge-litert": "ai_edge_litert",
    "tflite-runtime": "tflite_runtime",
    "tflite": "tflite_runtime",
    "tf": "tensorflow",
    "tensorflow.lite": "tensorflow",
    "auto": "auto",
}


def resolve_backend(name: str | None = None) -> tuple[Backend, Any, Any]:
    """Pick and import a backend: `name`, else env EDGE_SDK_BACKEND, else the first importable of AUTO_ORDER.

    Returns the backend, its `Interpreter` class and its `load_delegate` function.
    """
    requested = name if name is not None else os.environ.get(BACKEND_ENV_VAR) or "auto"
    key = _ALIASES.get(requested.strip().lower(), requested.strip().lower())
    if key != "auto":
        backend = BACKENDS.get(key)
        if backend is None:
            source = "backend" if name is not None else f"environment variable {BACKEND_ENV_VAR}"
            raise BackendUnavailableError(
                f"{source} is {requested!r}: expected one of auto, {', '.join(BACKENDS)}"
            )
        interpreter_class, load_delegate = backend.load()
        return backend, interpreter_class, load_delegate

    failures = []
    for key in AUTO_ORDER:
        try:
            interpreter_class, load_delegate = BACKENDS[key].load()
        except BackendUnavailableError as exc:
            failures.append(str(exc))
            continue
        logger.debug("using interpreter backend %s", key)
        return BACKENDS[key], interpreter_class, load_delegate
    raise BackendUnavailableError(
        "no TFLite interpreter backend can be imported: pip install ai-edge-litert (or tflite-runtime). "
        + "; ".join(failures)
    )
