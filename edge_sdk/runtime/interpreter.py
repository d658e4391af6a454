"""The one place that creates TFLite interpreters.

`make_interpreter()` checks the file (see `model_file`), loads the requested
delegates, creates the interpreter of the chosen backend and allocates its
tensors. Every failure becomes a `RuntimeModelError` subclass that names the
file and the next step, before native code can crash on a bad file.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.runtime.backends import resolve_backend
from edge_sdk.runtime.errors import (
    DelegateLoadError,
    EdgeTpuModelError,
    InvalidModelError,
    InvokeError,
    ModelConfigError,
    RuntimeModelError,
    UnsupportedOperatorError,
)
from edge_sdk.runtime.model_file import EDGETPU_CUSTOM_OP, ModelFileInfo, read_model_info
from edge_sdk.runtime.probe import probe_model

logger = logging.getLogger(__name__)

_EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
_EDGETPU_DEVICE = re.compile(r"(usb|pci)(:\d+)?")
_UNRESOLVED_OP = re.compile(r"unresolved custom op:\s*([^\s.]+(?:\.[^\s.]+)*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DelegateSpec:
    """A delegate to attach: its shared library and the options passed to `load_delegate`."""

    library: str
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_edgetpu(self) -> bool:
        return "edgetpu" in Path(self.library).name.lower()

    @classmethod
    def edgetpu(cls, device: str | None = None) -> DelegateSpec:
        """Describe the Edge TPU delegate; `device` is e.g. `usb`, `usb:0`, `pci` or `pci:0` (None: the first found)."""
        if device and not _EDGETPU_DEVICE.fullmatch(device):
            raise ModelConfigError(
                f"Edge TPU device {device!r} is invalid: expected usb, pci, usb:N or pci:N (N counts from 0), or none for the first found"
            )
        library = _EDGETPU_LIBRARIES.get(platform.system(), _EDGETPU_LIBRARIES["Linux"])
        return cls(library, {"device": device} if device else {})

    @classmethod
    def gpu(cls, library_path: str, **options: str) -> DelegateSpec:
        """Describe a GPU delegate from its shared library path (for example `libtensorflowlite_gpu_delegate.so`)."""
        return cls(library_path, dict(options))


@dataclass(frozen=True, slots=True)
class InterpreterHandle:
    """A ready interpreter with what was learned while creating it."""

    interpreter: Any
    backend: str
    model_info: ModelFileInfo
    delegates: tuple[DelegateSpec, ...]
    num_threads: int | None


def make_interpreter(
    model_path: str | Path,
    backend: str | None = None,
    num_threads: int | None = None,
    delegates: Iterable[DelegateSpec | str] = (),
) -> Any:
    """Create an interpreter for a `.tflite` file with its tensors allocated.

    `backend` is `ai_edge_litert`, `tflite_runtime` or `tensorflow`; None reads
    env EDGE_SDK_BACKEND, else takes the first importable in that order.
    `num_threads` None keeps the backend's default. A delegate given as a
    string is a library path. Use `open_interpreter()` to also get the backend
    name and operator list.
    """
    return open_interpreter(model_path, backend=backend, num_threads=num_threads, delegates=delegates).interpreter


def open_interpreter(
    model_path: str | Path,
    backend: str | None = None,
    num_threads: int | None = None,
    delegates: Iterable[DelegateSpec | str] = (),
) -> InterpreterHandle:
    """Do what `make_interpreter()` does and return the interpreter with its backend name and model facts."""
    model_path = Path(model_path)
    specs = tuple(DelegateSpec(d) if isinstance(d, str) else d for d in delegates)
    if num_threads is not None and num_threads < 1:
        raise RuntimeModelError(f"num_threads is {num_threads}: give a positive thread count or None for the backend default")

    info = read_model_info(model_path)
    if info.is_edgetpu_compiled and not any(spec.is_edgetpu for spec in specs):
        raise EdgeTpuModelError(_edgetpu_message(model_path))

    chosen, interpreter_class, load_delegate = resolve_backend(backend)
    if not chosen.verifies_models:
        probe_model(model_path, chosen)
    loaded = [_load_delegate(load_delegate, spec, model_path) for spec in specs]
    try:
        interpreter = interpreter_class(
            model_path=str(model_path), num_threads=num_threads, experimental_delegates=loaded or None
        )
        interpreter.allocate_tensors()
        # Tensor names are decoded here, so a corrupt name fails now rather than in predict().
        interpreter.get_input_details()
        interpreter.get_output_details()
    except UnicodeDecodeError as exc:
        raise InvalidModelError(f"{model_path} has tensor names that are not valid UTF-8 ({exc}): the file is corrupt; copy it again") from exc
    except (RuntimeError, ValueError) as exc:
        raise _classify_load_error(exc, model_path, specs) from exc
    logger.info(
        "loaded %s with %s (threads=%s, delegates=%s)", model_path, chosen.name, num_threads, [s.library for s in specs] or "none"
    )
    return InterpreterHandle(interpreter, chosen.name, info, specs, num_threads)


def invoke(interpreter: Any, model_path: str | Path) -> None:
    """Run the interpreter once, turning a backend failure into InvokeError naming the model."""
    try:
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise InvokeError(
            f"{model_path} failed while running ({_first_line(exc)}): check that the input matches the model "
            "and that the model runs with this backend (try `edge-sdk inspect`)"
        ) from exc


def _load_delegate(load_delegate: Any, spec: DelegateSpec, model_path: Path) -> Any:
    try:
        # Opening the library first keeps a missing file out of load_delegate,
        # whose Delegate object prints an AttributeError from __del__ when its
        # constructor fails (seen in ai-edge-litert 2.3 and tflite-runtime 2.14).
        ctypes.CDLL(spec.library)
        return load_delegate(spec.library, dict(spec.options) or None)
    except (ValueError, OSError, RuntimeError) as exc:
        if spec.is_edgetpu:
            device = spec.options.get("device", "any")
            hint = (
                f"no Edge TPU (device {device}) could be opened with {spec.library}: install the Edge TPU runtime "
                "(libedgetpu1-std), attach the Coral and check that this user can access it, or deploy the CPU build of the model"
            )
        else:
            hint = f"delegate library {spec.library} cannot be loaded: check the path and that it matches this machine and backend"
        raise DelegateLoadError(f"{hint} (while loading {model_path}; {_first_line(exc)})") from exc


def _classify_load_error(exc: Exception, model_path: Path, specs: tuple[DelegateSpec, ...]) -> RuntimeModelError:
    text = str(exc)
    match = _UNRESOLVED_OP.search(text)
    if match:
        op = match.group(1)
        if op == EDGETPU_CUSTOM_OP:
            return EdgeTpuModelError(_edgetpu_message(model_path))
        return UnsupportedOperatorError(
            f"{model_path} uses the custom operator {op!r}, which this runtime does not provide: "
            "re-export the model with builtin TFLite operators only, or use a runtime build that registers it"
        )
    if "flatbuffer" in text.lower() or "model allocation" in text.lower():
        return InvalidModelError(f"{model_path} is not a valid TFLite model ({_first_line(exc)}): copy the model again or re-export it")
    delegates = ", ".join(spec.library for spec in specs) or "none"
    return RuntimeModelError(
        f"{model_path} cannot be prepared by the interpreter ({_first_line(exc)}; delegates: {delegates}): "
        "check `edge-sdk inspect` for unsupported operators or try another backend"
    )


def _edgetpu_message(model_path: Path) -> str:
    return (
        f"{model_path} is compiled for the Edge TPU ({EDGETPU_CUSTOM_OP}) but no Edge TPU delegate is loaded: "
        "attach a Coral and load it with the Edge TPU delegate (DelegateSpec.edgetpu(), `--edgetpu`), "
        "or deploy the CPU build of the model"
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
