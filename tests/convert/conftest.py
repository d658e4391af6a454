"""Session fixtures for the converter tests: the GTSRB model trained once, and each package converted once.

The traffic-sign model is trained at test time from the real GTSRB training
images (the data has no open license, so no trained model is committed). It
is cached in `~/.cache/edge-sdk-tests` (or EDGE_SDK_TEST_CACHE) under a key
hashed from the recipe source, the training arguments and the data file, so
a change to any of them retrains.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

TRAIN_KWARGS = {"variant": "small", "epochs": 20, "seed": 1234, "validation_fraction": 0.05}
CALIBRATION_SAMPLES = 200
CACHE_ROOT = Path(os.environ.get("EDGE_SDK_TEST_CACHE", Path.home() / ".cache" / "edge-sdk-tests"))


@dataclass(frozen=True)
class TrainedModel:
    """The cached Keras model with its labels file and training report."""

    folder: Path
    model_path: Path
    labels_path: Path
    report: dict


@dataclass(frozen=True)
class Converted:
    """One conversion done for the session: the report and the package directory."""

    report: object
    package: Path


def _cache_key(data_file: Path) -> str:
    digest = hashlib.sha256()
    digest.update((REPO_ROOT / "models" / "traffic_signs.py").read_bytes())
    digest.update(json.dumps(TRAIN_KWARGS, sort_keys=True).encode())
    stat = data_file.stat()
    digest.update(f"{data_file.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def gtsrb_dir(data_dir: Path) -> Path:
    folder = data_dir / "gtsrb"
    if not (folder / "train_32x32.npz").is_file():
        pytest.skip(f"GTSRB data not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def traffic_model(gtsrb_dir: Path) -> TrainedModel:
    """The small traffic-sign model, trained on first use and cached across sessions."""
    from models.traffic_signs import train

    data_file = gtsrb_dir / "train_32x32.npz"
    folder = CACHE_ROOT / f"traffic_signs-{_cache_key(data_file)}"
    report_path = folder / "training_report.json"
    if not report_path.is_file():
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        train(data_file, staging, test_data=gtsrb_dir / "test", **TRAIN_KWARGS)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    return TrainedModel(folder, folder / "model.keras", folder / "labels.txt", report)


@pytest.fixture(scope="session")
def keras_model(traffic_model: TrainedModel):
    import keras

    return keras.models.load_model(traffic_model.model_path, compile=False)


@pytest.fixture(scope="session")
def packages_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packages")


@pytest.fixture(scope="session")
def convert_once(traffic_model: TrainedModel, gtsrb_dir: Path, packages_dir: Path):
    """Return a function (target, quantize) -> Converted that converts each pair once per session."""
    from edge_sdk.convert import ConvertOptions, convert

    done: dict[tuple[str, str], Converted] = {}

    def run(target: str, quantize: str) -> Converted:
        key = (target, quantize)
        if key not in done:
            output = packages_dir / f"{target}-{quantize}"
            report = convert(
                ConvertOptions(
                    model=traffic_model.model_path,
                    output=output,
                    target=target,
                    quantize=quantize,
                    calibration=gtsrb_dir / "train_32x32.npz",
                    samples=CALIBRATION_SAMPLES,
                    validation=gtsrb_dir / "test",
                    labels=traffic_model.labels_path,
                    run_compiler=False,
                )
            )
            done[key] = Converted(report, output)
        return done[key]

    return run


@pytest.fixture(scope="session")
def gtsrb_test_images(gtsrb_dir: Path) -> list[tuple[Path, int]]:
    """The real GTSRB test images with their class ids, from test_labels.csv."""
    import csv

    with (gtsrb_dir / "test_labels.csv").open(newline="", encoding="utf-8") as handle:
        return [(gtsrb_dir / row["path"], int(row["class_id"])) for row in csv.DictReader(handle)]
