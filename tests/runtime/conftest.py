"""Fixtures of the runtime tests: the committed tiny models and a bare interpreter to compare against.

These tests run in the default environment and in the tflite-runtime one
(numpy 1.26, no TensorFlow), so nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

MODELS_DIR = Path(__file__).resolve().parent / "models"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(scope="session")
def model_normalization() -> dict[str, dict[str, float]]:
    """Normalization (mean, std in pixel units) each tiny model was calibrated with."""
    return json.loads((MODELS_DIR / "normalization.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def coral_dir(data_dir: Path) -> Path:
    return data_dir / "coral"


@pytest.fixture(scope="session")
def detection_dir(data_dir: Path) -> Path:
    return data_dir / "detection"


def bare_invoke(model_path: Path, input_tensor: np.ndarray) -> list[np.ndarray]:
    """Run the backend's own Interpreter on a ready input tensor; return the raw outputs in output order."""
    from edge_sdk.runtime.backends import resolve_backend

    _, interpreter_class, _ = resolve_backend(None)
    interpreter: Any = interpreter_class(model_path=str(model_path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], input_tensor)
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]


def bare_output_details(model_path: Path) -> list[dict[str, Any]]:
    from edge_sdk.runtime.backends import resolve_backend

    _, interpreter_class, _ = resolve_backend(None)
    interpreter: Any = interpreter_class(model_path=str(model_path))
    interpreter.allocate_tensors()
    return interpreter.get_output_details()
