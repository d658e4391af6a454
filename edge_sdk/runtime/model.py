"""`Model`: load a model package or a bare `.tflite` file and run it on OpenCV frames."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.package.errors import ManifestError
from edge_sdk.package.manifest import DetectionOutputs, InputSpec, Manifest
from edge_sdk.package.results import InferenceResult
from edge_sdk.runtime.errors import ModelConfigError, RuntimeModelError
from edge_sdk.runtime.interpreter import DelegateSpec, InterpreterHandle, invoke, open_interpreter
from edge_sdk.runtime.labels import read_labels
from edge_sdk.runtime.loading import (
    BareModelOptions,
    build_bare_manifest,
    check_input_against_manifest,
    is_package,
    open_package_model,
    require_file,
)
from edge_sdk.runtime.model_file import ModelFileInfo
from edge_sdk.runtime.postprocess.classification import top_k, top_k_quantized
from edge_sdk.runtime.postprocess.detection import decode_detections
from edge_sdk.runtime.postprocess.segmentation import decode_segmentation
from edge_sdk.runtime.preprocess import InputTransform, is_identity_quantization, preprocess
from edge_sdk.runtime.tensors import OutputTensor, classes_look_like_scores, find_detection_outputs, output_tensors

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 5


class Model:
    """A loaded model: `predict(frame)` returns an InferenceResult for one OpenCV BGR frame.

    One interpreter is shared by all callers and guarded by a lock, so calls
    from several threads run one at a time. Use `Model.load()` to create one,
    and `close()` (or a `with` block) to release the interpreter and any
    extracted archive.
    """

    def __init__(
        self,
        handle: InterpreterHandle,
        manifest: Manifest,
        labels: list[str] | None,
        *,
        model_path: Path,
        input_spec: InputSpec,
        top_k: int = DEFAULT_TOP_K,
        temporary_dir: Path | None = None,
    ) -> None:
        self._handle: InterpreterHandle | None = handle
        self._manifest = manifest
        self._labels = labels
        self._model_path = model_path
        self._input_spec = input_spec
        self._top_k = top_k
        self._temporary_dir = temporary_dir
        self._lock = threading.Lock()
        interpreter = handle.interpreter
        input_details = interpreter.get_input_details()
        if len(input_details) != 1:
            names = ", ".join(detail["name"] for detail in input_details)
            raise ModelConfigError(f"{model_path} has {len(input_details)} inputs ({names}): Model runs image models with exactly one input")
        input_detail = input_details[0]
        self._input_index = int(input_detail["index"])
        self._batch_dynamic = int(input_detail.get("shape_signature", input_detail["shape"])[0]) == -1
        self._batch_size = int(input_detail["shape"][0])
        if self._batch_size != 1 and not self._batch_dynamic:
            raise ModelConfigError(
                f"{model_path} has a fixed batch size of {self._batch_size}: re-export it with batch 1 or a dynamic batch"
            )
        self._outputs = output_tensors(interpreter)
        self._outputs_by_name = {output.name: output for output in self._outputs}
        self._detection_roles = self._resolve_detection_roles() if manifest.task == "detection" else None
        # NOTE: when no output name identifies classes and scores, the first
        # frame with detections decides by value (class ids are whole numbers).
        self._roles_checked = not self._manifest.extra.get("detection_roles_guessed", False)

    # ----- loading -------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        labels: str | Path | None = None,
        mean: Sequence[float] | float | None = None,
        std: Sequence[float] | float | None = None,
        backend: str | None = None,
        num_threads: int | None = None,
        score_threshold: float | None = None,
        label_offset: int | None = None,
        task: str | None = None,
        color_order: str = "RGB",
        resize: str = "stretch",
        top_k: int = DEFAULT_TOP_K,
        delegates: Iterable[DelegateSpec | str] = (),
    ) -> Model:
        """Load a package directory, a package archive or a bare `.tflite` file.

        For a package everything comes from its manifest; `labels`,
        `score_threshold` and `label_offset` override it. For a bare file,
        `labels` is the labels file, a float input needs `mean` and `std`,
        `task` is guessed from the outputs when None, and `color_order`,
        `resize` and `label_offset` describe what the file cannot.
        Raises RuntimeModelError subclasses, or PackageError for a package
        that fails its schema or hash check.
        """
        path = Path(path)
        require_file(path)
        if top_k < 1:
            raise ModelConfigError(f"top_k is {top_k}: give a positive number of classes to return")
        temporary_dir = None
        try:
            if is_package(path):
                temporary_dir = Path(tempfile.mkdtemp(prefix="edge-sdk-model-")) if path.is_file() else None
                model_path, manifest, package_labels = open_package_model(path, temporary_dir or path)
                handle = open_interpreter(model_path, backend=backend, num_threads=num_threads, delegates=delegates)
                input_spec = check_input_against_manifest(handle, manifest, model_path)
                manifest = _apply_overrides(manifest, score_threshold, label_offset)
                ignored = [name for name, value in (("mean", mean), ("std", std), ("task", task)) if value is not None]
                if ignored:
                    logger.warning("%s is a package: its manifest sets the input and task, so %s are ignored", path, ", ".join(ignored))
                model_labels = read_labels(labels) if labels is not None else package_labels
            else:
                model_path = path
                handle = open_interpreter(path, backend=backend, num_threads=num_threads, delegates=delegates)
                options = BareModelOptions(labels, mean, std, task, color_order, resize, label_offset, score_threshold)
                manifest, model_labels = build_bare_manifest(handle, path, options)
                input_spec = manifest.input
            return cls(handle, manifest, model_labels, model_path=model_path, input_spec=input_spec, top_k=top_k,
                       temporary_dir=temporary_dir)
        except BaseException:
            if temporary_dir is not None:
                shutil.rmtree(temporary_dir, ignore_errors=True)
            raise

    # ----- properties ----------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def labels(self) -> list[str] | None:
        return self._labels

    @property
    def input_spec(self) -> InputSpec:
        """The input spec in use, with the input tensor's own scale and zero point."""
        return self._input_spec

    @property
    def model_path(self) -> Path:
        return self._model_path

    @property
    def backend(self) -> str:
        return self._require_handle().backend

    @property
    def model_info(self) -> ModelFileInfo:
        return self._require_handle().model_info

    @property
    def num_threads(self) -> int | None:
        return self._require_handle().num_threads

    @property
    def interpreter(self) -> Any:
        """The backend interpreter, for benchmarks and tools; do not use it while `predict()` runs in another thread."""
        return self._require_handle().interpreter

    @property
    def input_index(self) -> int:
        return self._input_index

    @property
    def feeds_pixels_directly(self) -> bool:
        """True when normalization and quantization cancel out, so resized pixels go into the input unchanged."""
        return is_identity_quantization(self._input_spec)

    @property
    def supports_batch(self) -> bool:
        """True when the input's batch dimension is dynamic, so `predict_batch()` runs one invoke per batch."""
        return self._batch_dynamic and self._manifest.task != "detection"

    # ----- inference -----------------------------------------------------

    def predict(self, image_bgr: np.ndarray) -> InferenceResult:
        """Run the model on one OpenCV BGR (or gray, or BGRA) uint8 frame."""
        with self._lock:
            handle = self._require_handle()
            start = time.perf_counter()
            tensor, transform = preprocess(image_bgr, self._input_spec)
            if self._batch_size != 1:
                self._resize_batch(handle.interpreter, tensor.shape)
            handle.interpreter.set_tensor(self._input_index, tensor)
            invoke_start = time.perf_counter()
            invoke(handle.interpreter, self._model_path)
            invoke_end = time.perf_counter()
            values = {output.name: handle.interpreter.get_tensor(output.index) for output in self._outputs}
            fields = self._decode(values, transform, batch_row=0)
            end = time.perf_counter()
        return self._result(
            fields, transform,
            preprocess_ms=(invoke_start - start) * 1e3,
            invoke_ms=(invoke_end - invoke_start) * 1e3,
            postprocess_ms=(end - invoke_end) * 1e3,
        )

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[InferenceResult]:
        """Run the model on several frames: one invoke when `supports_batch`, else one `predict()` each.

        Timings of a batched call are the batch's totals divided by its size.
        """
        images = list(images)
        if not images:
            return []
        if not self.supports_batch or len(images) == 1:
            return [self.predict(image) for image in images]
        with self._lock:
            return self._predict_batched(images)

    def _predict_batched(self, images: list[np.ndarray]) -> list[InferenceResult]:
        handle = self._require_handle()
        interpreter = handle.interpreter
        start = time.perf_counter()
        prepared = [preprocess(image, self._input_spec) for image in images]
        batch = np.concatenate([tensor for tensor, _ in prepared], axis=0)
        if self._batch_size != batch.shape[0]:
            self._resize_batch(interpreter, batch.shape)
        interpreter.set_tensor(self._input_index, batch)
        invoke_start = time.perf_counter()
        invoke(interpreter, self._model_path)
        invoke_end = time.perf_counter()
        values = {output.name: interpreter.get_tensor(output.index) for output in self._outputs}
        decoded = [(self._decode(values, transform, batch_row=row), transform) for row, (_, transform) in enumerate(prepared)]
        end = time.perf_counter()
        count = len(images)
        return [
            self._result(
                fields, transform,
                preprocess_ms=(invoke_start - start) * 1e3 / count,
                invoke_ms=(invoke_end - invoke_start) * 1e3 / count,
                postprocess_ms=(end - invoke_end) * 1e3 / count,
                extra={"batch_size": count},
            )
            for fields, transform in decoded
        ]

    def _resize_batch(self, interpreter: Any, shape: tuple[int, ...]) -> None:
        interpreter.resize_tensor_input(self._input_index, list(shape))
        interpreter.allocate_tensors()
        self._batch_size = int(shape[0])

    def _result(self, fields: dict[str, Any], transform: InputTransform, **timing: Any) -> InferenceResult:
        manifest = self._manifest
        return InferenceResult(
            task=manifest.task,
            model_name=manifest.name,
            model_version=manifest.version,
            frame_size=(transform.frame_width, transform.frame_height),
            **fields,
            **timing,
        )

    def _decode(self, values: dict[str, np.ndarray], transform: InputTransform, batch_row: int) -> dict[str, Any]:
        """Return the task's result fields for one batch row of the raw (still quantized) outputs."""
        manifest = self._manifest
        output = self._outputs[0]
        if manifest.task == "classification":
            raw = values[output.name][batch_row]
            best = top_k_quantized(raw, output.scale, output.zero_point, self._labels, manifest.label_offset, self._top_k)
            if best is None:
                best = top_k(output.dequantize(raw), self._labels, manifest.label_offset, self._top_k)
            return {"classifications": best}
        if manifest.task == "segmentation":
            scores = output.dequantize(values[output.name][batch_row : batch_row + 1])
            segmentation = decode_segmentation(scores, transform=transform, labels=self._labels, label_offset=manifest.label_offset)
            return {"segmentation": segmentation}
        dequantized = {name: self._outputs_by_name[name].dequantize(value) for name, value in values.items()}
        return {"detections": self._decode_detections(dequantized, transform)}

    def _decode_detections(self, values: dict[str, np.ndarray], transform: InputTransform) -> tuple:
        assert self._detection_roles is not None
        roles = self._detection_roles
        boxes, classes, scores, count = (values[roles[key].name] for key in ("boxes", "classes", "scores", "count"))
        if not self._roles_checked:
            valid = int(np.asarray(count).reshape(-1)[0])
            if valid > 0:
                self._check_class_score_roles(classes.reshape(-1)[:valid], scores.reshape(-1)[:valid])
                roles = self._detection_roles
                classes, scores = values[roles["classes"].name], values[roles["scores"].name]
        return decode_detections(
            boxes, classes, scores, count,
            box_order=self._manifest.detection.box_order if self._manifest.detection else "yxyx",
            transform=transform,
            labels=self._labels,
            label_offset=self._manifest.label_offset,
            score_threshold=self._manifest.score_threshold,
        )

    def _check_class_score_roles(self, classes: np.ndarray, scores: np.ndarray) -> None:
        assert self._detection_roles is not None
        if classes_look_like_scores(classes, scores):
            roles = self._detection_roles
            logger.warning("%s: output %s contains scores and %s contains classes, so the two are swapped", self._model_path,
                           roles["classes"].name, roles["scores"].name)
            self._detection_roles = {**roles, "classes": roles["scores"], "scores": roles["classes"]}
        self._roles_checked = True

    def _resolve_detection_roles(self) -> dict[str, OutputTensor]:
        detection: DetectionOutputs | None = self._manifest.detection
        if detection is None:
            found = find_detection_outputs(self._outputs)
            if found is not None:
                detection, named = found
                self._manifest = replace(self._manifest, extra={**self._manifest.extra, "detection_roles_guessed": not named})
        if detection is None:
            raise ModelConfigError(f"{self._model_path} is a detection model but its boxes, classes, scores and count outputs cannot be found")
        roles = {}
        for role in ("boxes", "classes", "scores", "count"):
            name = getattr(detection, role)
            if name not in self._outputs_by_name:
                known = ", ".join(self._outputs_by_name)
                raise ModelConfigError(
                    f"{self._model_path}: the manifest names output {name!r} as {role}, but the model's outputs are {known}: rebuild the package"
                )
            roles[role] = self._outputs_by_name[name]
        return roles

    # ----- lifecycle -----------------------------------------------------

    def _require_handle(self) -> InterpreterHandle:
        if self._handle is None:
            raise RuntimeModelError(f"model {self._model_path} is closed: load it again with Model.load")
        return self._handle

    def close(self) -> None:
        """Release the interpreter and delete an extracted archive; safe to call more than once."""
        with self._lock:
            self._handle = None
            if self._temporary_dir is not None:
                shutil.rmtree(self._temporary_dir, ignore_errors=True)
                self._temporary_dir = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else self._handle.backend
        return f"Model({self._manifest.name!r} {self._manifest.version}, {self._manifest.task}, {state})"


def _apply_overrides(manifest: Manifest, score_threshold: float | None, label_offset: int | None) -> Manifest:
    changes: dict[str, Any] = {}
    if score_threshold is not None:
        changes["score_threshold"] = float(score_threshold)
    if label_offset is not None:
        changes["label_offset"] = int(label_offset)
    if not changes:
        return manifest
    updated = replace(manifest, **changes)
    try:
        updated.validate()
    except ManifestError as exc:
        raise ModelConfigError(f"override of {', '.join(changes)} is invalid: {exc}") from exc
    return updated

