"""`edge-sdk attach-edgetpu`: putting an edgetpu_compiler output into a coral package written without the compiler.

edgetpu_compiler cannot run here, so the compiled model is Coral's own
MobileNet v1 build compiled for the Edge TPU, and the package is written from
its CPU twin the way `convert --target coral` writes it without the compiler.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from edge_sdk.cli import main
from edge_sdk.convert.attach import AttachError, CompiledModelNotFoundError, attach_compiled_model, default_report_path
from edge_sdk.convert.compiler import INSTALL_HINT
from edge_sdk.convert.report import ConversionReport
from edge_sdk.package import Manifest, write_package
from edge_sdk.runtime import EdgeTpuModelError, Model
from edge_sdk.runtime.labels import read_labels
from tests.conftest import REPO_ROOT

CPU_MODEL = "mobilenet_v1_0.25_128_quant.tflite"
COMPILED_MODEL = "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
OTHER_CPU_MODEL = "mobilenet_v2_1.0_224_quant.tflite"

# A log written for this test after the format edgetpu_compiler prints: a
# version line, the file names, the counts, then the Operator/Count/Status table.
COMPILER_LOG = """\
Edge TPU Compiler version 16.0.384591198

Input model: model.tflite
Output model: out/model_edgetpu.tflite
Number of Edge TPU subgraphs: 1
Total number of operations: 31
Operation log: out/model_edgetpu.log

Operator                       Count      Status

CONV_2D                        14         Mapped to Edge TPU
DEPTHWISE_CONV_2D              13         Mapped to Edge TPU
AVERAGE_POOL_2D                1          Mapped to Edge TPU
RESHAPE                        2          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
"""


@pytest.fixture
def coral_dir(data_dir: Path) -> Path:
    folder = data_dir / "coral"
    if not (folder / COMPILED_MODEL).is_file():
        pytest.skip(f"Coral test models not found in {folder}")
    return folder


def write_coral_package(model_path: Path, labels_path: Path, package: Path) -> Path:
    """Write a package and report as `convert --target coral` does without edgetpu_compiler, from an existing int8 model."""
    with Model.load(model_path) as model:
        manifest = model.manifest
    manifest = replace(
        manifest,
        name=model_path.stem,
        version="1",
        model_file="model.tflite",
        model_sha256="",
        labels_file="labels.txt",
        target="coral",
        quantization="int8",
        edgetpu_compiled=False,
        created_by="",
        extra={"conversion": {"source": str(model_path)}},
    )
    write_package(package, manifest, model_path.read_bytes(), read_labels(labels_path))
    report = ConversionReport(
        model=str(model_path),
        target="coral",
        requested_mode="int8",
        max_accuracy_drop=1.0,
        chosen_mode="int8",
        compiler={"compiled": False, "hint": INSTALL_HINT},
        package=str(package),
    )
    report.write(default_report_path(package))
    return package


@pytest.fixture
def package(coral_dir: Path, tmp_path: Path) -> Path:
    return write_coral_package(coral_dir / CPU_MODEL, coral_dir / "imagenet_labels.txt", tmp_path / "signs-coral")


@pytest.fixture
def compiler_log(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "model_edgetpu.log"
    path.parent.mkdir()
    path.write_text(COMPILER_LOG, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Return every file under `folder` (the package and its report) with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_attach_updates_manifest_and_report(package, coral_dir, compiler_log):
    compiled = coral_dir / COMPILED_MODEL

    result = attach_compiled_model(package, compiled, log=compiler_log)

    manifest = Manifest.read(package / "manifest.json")
    expected_sha256 = hashlib.sha256(compiled.read_bytes()).hexdigest()
    assert manifest.edgetpu_compiled is True
    assert manifest.model_file == "model_edgetpu.tflite"
    assert manifest.model_sha256 == expected_sha256
    assert (package / "model_edgetpu.tflite").read_bytes() == compiled.read_bytes()
    assert (package / "model.tflite").read_bytes() == (coral_dir / CPU_MODEL).read_bytes()
    assert manifest.extra["edgetpu"]["cpu_model_file"] == "model.tflite"
    assert manifest.extra["edgetpu"]["cpu_model_sha256"] == hashlib.sha256((coral_dir / CPU_MODEL).read_bytes()).hexdigest()
    assert manifest.extra["edgetpu"]["compiler_version"] == "16.0.384591198"
    assert manifest.extra["conversion"] == {"source": str(coral_dir / CPU_MODEL)}
    assert result.model_sha256 == expected_sha256
    assert result.report == default_report_path(package)

    report = json.loads(default_report_path(package).read_text(encoding="utf-8"))
    assert report["compiler"]["compiled"] is True
    assert report["compiler"]["version"] == "16.0.384591198"
    assert report["compiler"]["edgetpu_ops"] == 31
    assert report["compiler"]["cpu_ops"] == 0
    assert report["compiler"]["rows"][0] == {"op": "CONV_2D", "count": 14, "status": "Mapped to Edge TPU"}
    assert report["compiler"]["attached_model"] == str(compiled)
    assert "hint" not in report["compiler"]
    assert report["package"] == str(package)
    assert not list(package.glob(".edge-sdk-attach-*"))


def test_attached_package_needs_coral_to_load(package, coral_dir):
    attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    with pytest.raises(EdgeTpuModelError) as caught:
        Model.load(package)

    message = str(caught.value)
    assert str(package / "model_edgetpu.tflite") in message
    assert "attach a Coral" in message
    assert "deploy the CPU build" in message


def test_attach_without_log_keeps_report_valid(package, coral_dir):
    result = attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    report = json.loads(default_report_path(package).read_text(encoding="utf-8"))
    assert result.log is None
    assert report["compiler"]["compiled"] is True
    assert report["compiler"]["attached_log"] is None
    assert "rows" not in report["compiler"]
    assert Manifest.read(package / "manifest.json").extra["edgetpu"]["compiler_version"] is None


def test_attach_without_report_updates_package_only(package, coral_dir):
    default_report_path(package).unlink()

    result = attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    assert result.report is None
    assert Manifest.read(package / "manifest.json").edgetpu_compiled is True
    assert not default_report_path(package).exists()


def test_attach_rejects_cpu_model(package, coral_dir):
    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / CPU_MODEL)

    message = str(caught.value)
    assert str(coral_dir / CPU_MODEL) in message
    assert "edgetpu-custom-op" in message
    assert f"edgetpu_compiler -s -o OUTDIR {package / 'model.tflite'}" in message


def test_attach_rejects_non_tflite_file(package, coral_dir):
    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / "imagenet_labels.txt")

    message = str(caught.value)
    assert "is not a TFLite model" in message
    assert str(coral_dir / "imagenet_labels.txt") in message


def test_attach_rejects_model_compiled_from_other_model(coral_dir, tmp_path):
    other = write_coral_package(coral_dir / OTHER_CPU_MODEL, coral_dir / "imagenet_labels.txt", tmp_path / "other-coral")

    with pytest.raises(AttachError) as caught:
        attach_compiled_model(other, coral_dir / COMPILED_MODEL)

    message = str(caught.value)
    assert str(coral_dir / COMPILED_MODEL) in message
    assert str(other / "model.tflite") in message
    assert "[1, 128, 128, 3]" in message
    assert "[1, 224, 224, 3]" in message
    assert "compiled from another model" in message


def test_attach_rejects_missing_file(package, tmp_path):
    missing = tmp_path / "out" / "model_edgetpu.tflite"

    with pytest.raises(CompiledModelNotFoundError) as caught:
        attach_compiled_model(package, missing)

    assert isinstance(caught.value, FileNotFoundError)
    assert str(missing) in str(caught.value)


def test_attach_rejects_compiled_package(package, coral_dir):
    attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    assert "already contains a model compiled for the Edge TPU" in str(caught.value)


def test_attach_rejects_cpu_target_package(package, coral_dir):
    manifest = Manifest.read(package / "manifest.json")
    replace(manifest, target="cpu").write(package)

    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / COMPILED_MODEL)

    assert "is a cpu package, not a coral package" in str(caught.value)


def test_attach_rejects_text_as_compiler_log(package, coral_dir):
    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / COMPILED_MODEL, log=coral_dir / "imagenet_labels.txt")

    assert "is not an edgetpu_compiler log" in str(caught.value)


def test_attach_with_log_needs_report(package, coral_dir, compiler_log):
    default_report_path(package).unlink()

    with pytest.raises(CompiledModelNotFoundError) as caught:
        attach_compiled_model(package, coral_dir / COMPILED_MODEL, log=compiler_log)

    assert str(default_report_path(package)) in str(caught.value)


@pytest.mark.parametrize(
    "case",
    ["cpu_model", "other_model", "missing_file", "bad_log", "missing_log", "bad_report"],
)
def test_attach_failure_changes_nothing(case, package, coral_dir, compiler_log, tmp_path):
    compiled, log = coral_dir / COMPILED_MODEL, compiler_log
    if case == "cpu_model":
        compiled = coral_dir / CPU_MODEL
    elif case == "other_model":
        package = write_coral_package(coral_dir / OTHER_CPU_MODEL, coral_dir / "imagenet_labels.txt", tmp_path / "other-coral")
        compiled = coral_dir / COMPILED_MODEL
    elif case == "missing_file":
        compiled = tmp_path / "absent_edgetpu.tflite"
    elif case == "bad_log":
        log = coral_dir / "imagenet_labels.txt"
    elif case == "missing_log":
        log = tmp_path / "absent.log"
    elif case == "bad_report":
        default_report_path(package).write_text("{not json", encoding="utf-8")
    before = snapshot(package.parent)

    with pytest.raises(AttachError):
        attach_compiled_model(package, compiled, log=log)

    assert snapshot(package.parent) == before


def test_attach_write_failure_changes_nothing(package, coral_dir, compiler_log):
    # A folder where the compiled model goes makes the rename fail after the temporary files are written.
    (package / "model_edgetpu.tflite").mkdir()
    before = snapshot(package.parent)

    with pytest.raises(AttachError) as caught:
        attach_compiled_model(package, coral_dir / COMPILED_MODEL, log=compiler_log)

    assert "the package was left unchanged" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert snapshot(package.parent) == before
    assert not list(package.parent.rglob(".edge-sdk-attach-*"))
    assert Manifest.read(package / "manifest.json").edgetpu_compiled is False


def test_cli_attach_edgetpu_prints_result(package, coral_dir, compiler_log, capsys):
    code = main(["attach-edgetpu", str(package), str(coral_dir / COMPILED_MODEL), "--log", str(compiler_log), "--json"])

    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert output["model_file"] == "model_edgetpu.tflite"
    assert output["cpu_model_file"] == "model.tflite"
    assert output["compiler"]["edgetpu_ops"] == 31


def test_cli_attach_edgetpu_reports_error(package, coral_dir, capsys):
    code = main(["attach-edgetpu", str(package), str(coral_dir / CPU_MODEL)])

    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("edge-sdk attach-edgetpu: error: ")
    assert "edgetpu-custom-op" in error


def test_cli_attach_edgetpu_leaves_tensorflow_unloaded(package, coral_dir, compiler_log):
    code = (
        "import sys\n"
        "from edge_sdk.cli import main\n"
        f"code = main(['attach-edgetpu', {str(package)!r}, {str(coral_dir / COMPILED_MODEL)!r}, '--log', {str(compiler_log)!r}])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )

    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    assert completed.stdout.splitlines()[-1].split() == ["0", "False", "False"]


def test_install_hint_names_attach_command():
    assert "edgetpu_compiler -s -o" in INSTALL_HINT
    assert "edge-sdk attach-edgetpu" in INSTALL_HINT
