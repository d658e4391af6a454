import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.skipif(os.environ.get("EDGE_SDK_BACKEND", "").startswith("tensorflow"), reason="the tensorflow backend is chosen")
def test_inference_does_not_import_tensorflow(coral_dir):
    """Run a full predict() in a fresh interpreter and check TensorFlow never got imported."""
    script = textwrap.dedent(
        """
        import json, sys
        import cv2
        from edge_sdk.runtime import Model
        model = Model.load(sys.argv[1], labels=sys.argv[2])
        result = model.predict(cv2.imread(sys.argv[3]))
        backend = model.backend
        model.close()
        print(json.dumps({"label": result.top.label, "backend": backend, "tensorflow": "tensorflow" in sys.modules}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(coral_dir / "mobilenet_v2_1.0_224_quant.tflite"),
         str(coral_dir / "imagenet_labels.txt"), str(coral_dir / "parrot.jpg")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["label"] == "macaw"
    assert outcome["backend"] in ("ai_edge_litert", "tflite_runtime")
    assert outcome["tensorflow"] is False
