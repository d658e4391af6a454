"""Errors of the on-vehicle runtime, all under `RuntimeModelError`.

Each class also inherits the builtin a caller would expect, so
`except FileNotFoundError` still catches a missing model. Messages name the
file and the next step.
"""

from edge_sdk.errors import EdgeSdkError


class RuntimeModelError(EdgeSdkError):
    """A model cannot be loaded or run by the on-vehicle runtime."""


class ModelNotFoundError(RuntimeModelError, FileNotFoundError):
    """The model file, package or labels file does not exist."""


class InvalidModelError(RuntimeModelError, ValueError):
    """The file is not a TFLite flatbuffer: wrong file identifier, truncated or corrupt."""


class UnsupportedOperatorError(RuntimeModelError, ValueError):
    """The model uses a custom operator this runtime does not provide."""


class EdgeTpuModelError(UnsupportedOperatorError):
    """The model is compiled for the Edge TPU (`edgetpu-custom-op`) but no Edge TPU delegate is loaded."""


class BackendUnavailableError(RuntimeModelError, ImportError):
    """No interpreter backend (ai-edge-litert, tflite-runtime, TensorFlow Lite) can be imported."""


class DelegateLoadError(RuntimeModelError, OSError):
    """A delegate library (Edge TPU, GPU) cannot be loaded or attached."""


class InvokeError(RuntimeModelError, RuntimeError):
    """The interpreter failed while running the model."""


class ModelConfigError(RuntimeModelError, ValueError):
    """The model and the way it is described do not fit (input spec, labels, outputs, options)."""


class InputImageError(RuntimeModelError, ValueError):
    """A frame passed to `predict()` is not an 8-bit OpenCV image."""
