"""The `manifest.json` schema: the only module that reads or writes it.

The manifest tells the runtime exactly how to feed a model and read its
outputs, so that calibration on the cloud side and inference on the vehicle
run the same preprocessing. Schema versions are `MAJOR.MINOR`: a reader
accepts any minor version of its own major version and rejects other majors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.package.errors import ManifestError

SCHEMA_VERSION = "1.0"
MANIFEST_FILENAME = "manifest.json"

TASKS = ("classification", "detection", "segmentation")
TARGETS = ("cpu", "jetson", "coral")
QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8", "uint8")
INPUT_DTYPES = ("float32", "float16", "uint8", "int8")
COLOR_ORDERS = ("RGB", "BGR", "GRAY")
RESIZE_MODES = ("stretch", "letterbox", "center_crop")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How a BGR camera frame becomes the model's input tensor.

    Pixels (0-255, after color conversion and resize) are normalized as
    `(pixel - mean) / std` per channel. A quantized input is then quantized
    with the tensor's own `scale` and `zero_point`: `q = round(x / scale) + zero_point`.
    """

    shape: tuple[int, ...]
    dtype: str
    color_order: str = "RGB"
    resize: str = "stretch"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    scale: float | None = None
    zero_point: int | None = None

    @property
    def height(self) -> int:
        return int(self.shape[1])

    @property
    def width(self) -> int:
        return int(self.shape[2])

    @property
    def channels(self) -> int:
        return int(self.shape[3]) if len(self.shape) == 4 else 1

    @property
    def is_quantized(self) -> bool:
        return self.dtype in ("uint8", "int8")

    def validate(self) -> None:
        """Raise ManifestError naming the first invalid field."""
        if len(self.shape) != 4 or any(int(d) <= 0 for d in self.shape):
            raise ManifestError(f"input.shape {list(self.shape)} is invalid: expected [1, height, width, channels] with positive sizes")
        _check_choice("input.dtype", self.dtype, INPUT_DTYPES)
        _check_choice("input.color_order", self.color_order, COLOR_ORDERS)
        _check_choice("input.resize", self.resize, RESIZE_MODES)
        for name, values in (("input.mean", self.mean), ("input.std", self.std)):
            if len(values) not in (1, self.channels):
                raise ManifestError(f"{name} {list(values)} has {len(values)} values: expected 1 or {self.channels} (one per channel)")
        if any(s == 0 for s in self.std):
            raise ManifestError(f"input.std {list(self.std)} contains 0: a standard deviation must be non-zero")
        if self.is_quantized and (self.scale is None or self.zero_point is None or self.scale <= 0):
            raise ManifestError(
                f"input.dtype is {self.dtype} but input.scale={self.scale!r}, input.zero_point={self.zero_point!r}: "
                "a quantized input needs a positive scale and an integer zero point"
            )


@dataclass(frozen=True, slots=True)
class DetectionOutputs:
    """Which output tensor (by name) holds each part of a detection result.

    Exporters order the four `TFLite_Detection_PostProcess` outputs differently,
    so tensors are matched by name (written by the converter or found by shape
    when a bare model is loaded), never by position. `box_order` is the
    coordinate order of the boxes tensor, normalized to [0, 1].
    """

    boxes: str
    classes: str
    scores: str
    count: str
    box_order: str = "yxyx"


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything the runtime needs to run a model package."""

    name: str
    version: str
    task: str
    input: InputSpec
    model_file: str = "model.tflite"
    model_sha256: str = ""
    labels_file: str | None = "labels.txt"
    label_offset: int = 0
    target: str = "cpu"
    quantization: str = "fp32"
    detection: DetectionOutputs | None = None
    score_threshold: float = 0.5
    edgetpu_compiled: bool = False
    created_by: str = ""
    schema_version: str = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ManifestError naming the first invalid field."""
        _check_schema_version(self.schema_version)
        if not self.name:
            raise ManifestError("manifest name is empty: give the model a name")
        _check_choice("task", self.task, TASKS)
        _check_choice("target", self.target, TARGETS)
        _check_choice("quantization", self.quantization, QUANTIZATIONS)
        self.input.validate()
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ManifestError(f"score_threshold {self.score_threshold} is outside [0, 1]")
        for key, value in (("model_file", self.model_file), ("labels_file", self.labels_file)):
            if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
                raise ManifestError(f"{key} {value!r} must be a plain file name inside the package")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"]["shape"] = list(self.input.shape)
        data["input"]["mean"] = list(self.input.mean)
        data["input"]["std"] = list(self.input.std)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Build and validate a manifest; unknown keys of a newer minor version are ignored."""
        if not isinstance(data, dict):
            raise ManifestError(f"manifest is a {type(data).__name__}, expected a JSON object")
        _check_schema_version(data.get("schema_version"))
        try:
            input_spec = _input_from_dict(data["input"])
            detection = DetectionOutputs(**data["detection"]) if data.get("detection") else None
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("input", "detection")}
            manifest = cls(input=input_spec, detection=detection, **known)
        except KeyError as exc:
            raise ManifestError(f"manifest is missing the required key {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise ManifestError(f"manifest has an invalid field: {exc}") from exc
        manifest.validate()
        return manifest

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"{path} not found: a model package needs a {MANIFEST_FILENAME}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path} is not valid JSON ({exc}): rewrite it with `edge-sdk convert` or fix it by hand") from exc
        return cls.from_dict(data)

    def write(self, directory: str | Path) -> Path:
        self.validate()
        path = Path(directory) / MANIFEST_FILENAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _input_from_dict(data: dict[str, Any]) -> InputSpec:
    if not isinstance(data, dict):
        raise ManifestError(f"manifest key 'input' is {data!r}, expected an object")
    values = dict(data)
    for key in ("shape", "mean", "std"):
        if key in values:
            values[key] = tuple(values[key])
    return InputSpec(**values)


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ManifestError(f"{key} is {value!r}: expected one of {', '.join(choices)}")


def _check_schema_version(version: Any) -> None:
    own_major = SCHEMA_VERSION.split(".")[0]
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise ManifestError(f"schema_version {version!r} is invalid: expected 'MAJOR.MINOR' such as {SCHEMA_VERSION!r}")
    if version.split(".")[0] != own_major:
        raise ManifestError(
            f"schema_version {version} is not supported by this edge-sdk (reads {own_major}.x): "
            "upgrade edge-sdk on this machine or re-export the package with a matching version"
        )
