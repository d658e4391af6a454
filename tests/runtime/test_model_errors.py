import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edge_sdk.runtime import (
    BackendUnavailableError,
    DelegateLoadError,
    EdgeTpuModelError,
    InputImageError,
    InvalidModelError,
    InvokeError,
    Model,
    ModelConfigError,
    ModelNotFoundError,
    RuntimeModelError,
    UnsupportedOperatorError,
)
from edge_sdk.runtime.interpreter import DelegateSpec, make_interpreter
from tests.conftest import REPO_ROOT


def test_edgetpu_model_without_coral_names_the_fix(coral_dir):
    path = coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    with pytest.raises(EdgeTpuModelError) as info:
        Model.load(path, labels=coral_dir / "imagenet_labels.txt")
    message = str(info.value)
    assert str(path) in message
    assert "edgetpu-custom-op" in message
    assert "attach a Coral" in message
    assert "CPU build" in message


def test_edgetpu_delegate_missing_library_is_delegate_error(coral_dir):
    with pytest.raises(DelegateLoadError, match="Edge TPU") as info:
        make_interpreter(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite", delegates=[DelegateSpec.edgetpu("usb:0")])
    assert "usb:0" in str(info.value)


def test_gpu_delegate_bad_path_is_delegate_error(coral_dir, tmp_path):
    library = tmp_path / "libmissing_gpu_delegate.so"
    with pytest.raises(DelegateLoadError, match="cannot be loaded") as info:
        make_interpreter(coral_dir / "mobilenet_v1_0.25_128_quant.tflite", delegates=[DelegateSpec.gpu(str(library))])
    assert str(library) in str(info.value)


def test_unknown_custom_op_is_named(coral_dir):
    path = coral_dir / "model_invoking_error.tflite"
    with pytest.raises(UnsupportedOperatorError, match="fake-op-double") as info:
        Model.load(path)
    assert not isinstance(info.value, EdgeTpuModelError)
    assert str(path) in str(info.value)


def test_truncated_model_is_invalid(coral_dir, tmp_path):
    path = tmp_path / "truncated.tflite"
    path.write_bytes((coral_dir / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()[:200_000])
    with pytest.raises(InvalidModelError, match="truncated or corrupt") as info:
        Model.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_small_model_is_invalid(models_dir, tmp_path, fraction):
    content = (models_dir / "dominant_color_float.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(InvalidModelError):
        make_interpreter(path)


def test_text_file_named_tflite_is_invalid(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_text("this is a README, not a model\n", encoding="utf-8")
    with pytest.raises(InvalidModelError, match="not a TFLite model") as info:
        Model.load(path)
    assert "TFL3" in str(info.value)


def test_empty_file_is_invalid(tmp_path):
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    with pytest.raises(InvalidModelError, match="empty"):
        Model.load(path)


def test_missing_model_is_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        Model.load(tmp_path / "absent.tflite")
    assert isinstance(info.value, FileNotFoundError)


def test_missing_labels_file_is_not_found(models_dir, tmp_path):
    with pytest.raises(ModelNotFoundError, match="labels file"):
        Model.load(models_dir / "dominant_color_uint8_zp128.tflite", labels=tmp_path / "labels.txt")


def test_float_bare_model_needs_mean_and_std(models_dir):
    with pytest.raises(ModelConfigError, match="pass mean and std"):
        Model.load(models_dir / "dominant_color_float.tflite")


def test_unknown_backend_name_is_rejected(models_dir):
    with pytest.raises(BackendUnavailableError, match="expected one of auto"):
        make_interpreter(models_dir / "dominant_color_float.tflite", backend="onnx")


def test_unknown_backend_in_environment_is_rejected(models_dir, monkeypatch):
    monkeypatch.setenv("EDGE_SDK_BACKEND", "coreml")
    with pytest.raises(BackendUnavailableError, match="EDGE_SDK_BACKEND"):
        make_interpreter(models_dir / "dominant_color_float.tflite")


def test_non_positive_threads_rejected(models_dir):
    with pytest.raises(RuntimeModelError, match="num_threads is 0"):
        make_interpreter(models_dir / "dominant_color_float.tflite", num_threads=0)


def test_predict_rejects_float_frame(models_dir):
    with Model.load(models_dir / "dominant_color_uint8_zp128.tflite") as model:
        with pytest.raises(InputImageError, match="dtype float64"):
            model.predict(np.zeros((32, 32, 3)))


def test_predict_after_close_is_an_error(models_dir):
    model = Model.load(models_dir / "dominant_color_uint8_zp128.tflite")
    model.close()
    model.close()
    with pytest.raises(RuntimeModelError, match="closed"):
        model.predict(np.zeros((32, 32, 3), dtype=np.uint8))


def test_bad_models_do_not_crash_the_process(coral_dir, models_dir, tmp_path):
    """Load every bad file in a child process, so a native crash fails this test instead of killing pytest."""
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes((coral_dir / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()[:1_000_000])
    text = tmp_path / "text.tflite"
    text.write_text("hello\n" * 50, encoding="utf-8")

    flipped = bytearray((models_dir / "dominant_color_float.tflite").read_bytes())
    for position in range(40, len(flipped), 97):
        flipped[position] ^= 0xFF
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(bytes(flipped))
    # One changed byte inside a table: tflite-runtime 2.14, which does not
    # verify FlatBuffers, crashed with SIGSEGV on this file.
    one_byte = bytearray((models_dir / "dominant_color_float.tflite").read_bytes())
    one_byte[195] = 43
    crashing = tmp_path / "crashing.tflite"
    crashing.write_bytes(bytes(one_byte))

    paths = [
        coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
        coral_dir / "model_invoking_error.tflite",
        truncated,
        text,
        crashing,
        corrupt,
    ]
    script = textwrap.dedent(
        """
        import sys
        from edge_sdk.runtime import Model, RuntimeModelError
        for path in sys.argv[1:]:
            try:
                Model.load(path, mean=0, std=1)
            except RuntimeModelError as exc:
                print(type(exc).__name__)
            else:
                print("loaded")
        """
    )

    completed = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcomes = completed.stdout.split()
    assert outcomes[:5] == ["EdgeTpuModelError", "UnsupportedOperatorError", "InvalidModelError", "InvalidModelError", "InvalidModelError"]
    assert len(outcomes) == len(paths)


def test_invoke_failure_is_invoke_error_and_model_recovers(models_dir):
    path = models_dir / "gather_out_of_range.tflite"
    with Model.load(path, mean=0, std=255, task="classification") as model:
        with pytest.raises(InvokeError, match="failed while running") as info:
            model.predict(np.full((8, 8, 3), 200, dtype=np.uint8))
        assert str(path) in str(info.value)
        assert isinstance(info.value, RuntimeError)
        assert model.predict(np.zeros((8, 8, 3), dtype=np.uint8)).top.class_id == 0


def test_edgetpu_device_name_is_checked():
    assert DelegateSpec.edgetpu("usb:1").options == {"device": "usb:1"}
    assert DelegateSpec.edgetpu().options == {}
    with pytest.raises(ModelConfigError, match="Edge TPU device 'usb1' is invalid"):
        DelegateSpec.edgetpu("usb1")


def test_bare_model_options_are_checked(models_dir):
    path = models_dir / "dominant_color_float.tflite"
    with pytest.raises(ModelConfigError, match="input.resize is 'squash'"):
        Model.load(path, mean=128, std=128, resize="squash")
    with pytest.raises(ModelConfigError, match="score_threshold 1.5"):
        Model.load(path, mean=128, std=128, score_threshold=1.5)
    with pytest.raises(ModelConfigError, match="std"):
        Model.load(path, mean=128, std=0)


def test_probe_reports_interpreter_crash(models_dir, tmp_path, monkeypatch):
    from edge_sdk.runtime.backends import Backend
    from edge_sdk.runtime.probe import probe_model

    # A stand-in backend whose Interpreter aborts, as a segfaulting one would die.
    (tmp_path / "aborting_backend.py").write_text(
        "import os\n\nclass Interpreter:\n    def __init__(self, model_path):\n        os.abort()\n", encoding="utf-8"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    backend = Backend("aborting", "aborting_backend", "aborting_backend", "none")
    with pytest.raises(InvalidModelError, match="crashes the aborting interpreter \\(SIGABRT"):
        probe_model(models_dir / "dominant_color_float.tflite", backend)


def test_probe_accepts_good_model(models_dir):
    from edge_sdk.runtime.backends import BACKENDS, resolve_backend
    from edge_sdk.runtime.probe import probe_model

    backend, _, _ = resolve_backend(None)
    probe_model(models_dir / "dominant_color_float.tflite", BACKENDS[backend.name])


def test_huge_declared_tensor_shape_is_invalid(models_dir, tmp_path):
    from edge_sdk.runtime.model_file import read_model_info

    content = bytearray((models_dir / "dominant_color_float.tflite").read_bytes())
    # The input shape [1, 32, 32, 3] is stored as int32 values. Make the first 32 absurd.
    pattern = (1).to_bytes(4, "little") + (32).to_bytes(4, "little") + (32).to_bytes(4, "little") + (3).to_bytes(4, "little")
    position = bytes(content).find(pattern)
    assert position > 0
    content[position + 4 : position + 8] = (1 << 30).to_bytes(4, "little")
    path = tmp_path / "huge.tflite"
    path.write_bytes(bytes(content))
    with pytest.raises(InvalidModelError, match="GiB, so a tensor shape is corrupt"):
        read_model_info(path)


def test_probe_reports_memory_exhaustion(models_dir, tmp_path, monkeypatch):
    from edge_sdk.runtime.backends import Backend
    from edge_sdk.runtime.probe import probe_model

    (tmp_path / "greedy_backend.py").write_text(
        "class Interpreter:\n    def __init__(self, model_path):\n        raise RuntimeError('Failed to allocate memory for tensors')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    backend = Backend("greedy", "greedy_backend", "greedy_backend", "none")
    with pytest.raises(InvalidModelError, match="needs more than 2.0 GiB of memory"):
        probe_model(models_dir / "dominant_color_int8_zp0.tflite", backend)


def test_random_corruption_never_crashes(models_dir, tmp_path):
    """Change a few random bytes of a small model 40 times; every copy must load or raise RuntimeModelError."""
    import numpy as np

    original = (models_dir / "dominant_color_float.tflite").read_bytes()
    rng = np.random.default_rng(2024)
    paths = []
    for index in range(40):
        content = bytearray(original)
        for position in rng.integers(8, len(content), size=int(rng.integers(1, 9))):
            content[position] = int(rng.integers(0, 256))
        path = tmp_path / f"mutated_{index}.tflite"
        path.write_bytes(bytes(content))
        paths.append(path)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from edge_sdk.runtime import Model, RuntimeModelError
        for path in sys.argv[1:]:
            try:
                with Model.load(path, mean=128, std=128) as model:
                    model.predict(np.zeros((32, 32, 3), dtype=np.uint8))
            except RuntimeModelError as exc:
                print(type(exc).__name__)
            else:
                print("loaded")
        """
    )

    completed = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcomes = completed.stdout.split()
    assert len(outcomes) == len(paths)
    assert outcomes.count("InvalidModelError") > len(paths) // 2
