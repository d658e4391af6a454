"""Importing the converter and the recipe package must not load TensorFlow."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_convert_import_leaves_tensorflow_unloaded():
    code = (
        "import sys, edge_sdk.convert, edge_sdk.cli.convert, models, models.traffic_signs; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert completed.stdout.split() == ["False", "False"]
