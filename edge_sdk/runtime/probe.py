"""Load a model once in a child process, so a file that crashes the interpreter cannot crash this one.

Backends without the FlatBuffer verifier (tflite-runtime 2.14, tf.lite)
build the interpreter straight from the file. A corrupt file that passes the
checks in `model_file` can then end in a segmentation fault. The child
creates the interpreter, allocates tensors and invokes once on zeros, under
an address-space limit. Only a crash or an allocation failure counts,
because any other Python error is raised again, with its message, when this
process creates the real interpreter.

NOTE: whether reading a corrupt file faults depends on memory layout, so a
file can survive the child and still crash this process. The checks in
`model_file` catch the corrupt files seen so far before the probe runs.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

from edge_sdk.runtime.backends import Backend
from edge_sdk.runtime.errors import InvalidModelError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 120.0

# Address space of the child: a base for Python, numpy and the interpreter
# (about 150 MB was seen with tflite-runtime 2.14) plus room for tensors.
# A corrupt tensor shape otherwise made one child allocate 5.6 GB.
PROBE_BASE_MEMORY_BYTES = 2 << 30
PROBE_MEMORY_PER_MODEL_BYTE = 16

_EXIT_OUT_OF_MEMORY = 3

_CHILD_SCRIPT = """
import sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
except (ImportError, ValueError, OSError):
    pass  # no rlimit on this platform: probe without a memory cap
import numpy as np
module = __import__(sys.argv[1], fromlist=["Interpreter"])
try:
    interpreter = module.Interpreter(model_path=sys.argv[2])
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    for detail in interpreter.get_output_details():
        interpreter.get_tensor(detail["index"])
except MemoryError:
    sys.exit(3)
except Exception as exc:
    # Raised again, with the same message, by the load in the parent process,
    # unless it is an allocation failure caused by the memory cap.
    if "alloc" in str(exc).lower() or "memory" in str(exc).lower():
        sys.exit(3)
"""

# Files already probed in this process, by (backend, path, size, modification time).
_probed: set[tuple[str, str, int, int]] = set()
_probed_lock = threading.Lock()


def probe_model(model_path: Path, backend: Backend) -> None:
    """Raise InvalidModelError when loading and running `model_path` kills a child process."""
    stat = model_path.stat()
    key = (backend.name, str(model_path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _probed_lock:
        if key in _probed:
            return
    memory_limit = PROBE_BASE_MEMORY_BYTES + PROBE_MEMORY_PER_MODEL_BYTE * stat.st_size
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD_SCRIPT, backend.interpreter_module, str(model_path), str(memory_limit)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidModelError(
            f"{model_path} did not load within {PROBE_TIMEOUT_S:.0f} s in a test process ({backend.name}): "
            "the file may be corrupt; copy it again or re-export it"
        ) from exc
    if completed.returncode < 0:
        signal_name = _signal_name(-completed.returncode)
        raise InvalidModelError(
            f"{model_path} crashes the {backend.name} interpreter ({signal_name} in a test process limited to "
            f"{memory_limit / 2**30:.1f} GiB of address space): the file is corrupt; copy the model again or re-export it"
        )
    if completed.returncode == _EXIT_OUT_OF_MEMORY:
        raise InvalidModelError(
            f"{model_path} needs more than {memory_limit / 2**30:.1f} GiB of memory to load in a test process "
            f"({backend.name}): the file is corrupt or far larger than an on-vehicle model; check it with `edge-sdk inspect`"
        )
    if completed.returncode != 0:
        # The child could not even start the backend; the in-process load reports why.
        logger.debug("probe of %s exited with %d: %s", model_path, completed.returncode, completed.stderr[-500:])
    with _probed_lock:
        _probed.add(key)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
