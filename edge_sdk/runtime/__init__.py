"""On-vehicle inference: interpreter backends, `Model`, pre- and post-processing. Never imports TensorFlow.

`Model` is imported lazily so `import edge_sdk.runtime.errors` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_sdk.runtime.errors import (
    BackendUnavailableError,
    DelegateLoadError,
    EdgeTpuModelError,
    InputImageError,
    InvalidModelError,
    InvokeError,
    ModelConfigError,
    ModelNotFoundError,
    RuntimeModelError,
    UnsupportedOperatorError,
)

if TYPE_CHECKING:
    from edge_sdk.runtime.interpreter import DelegateSpec, make_interpreter
    from edge_sdk.runtime.model import Model

__all__ = [
    "BackendUnavailableError",
    "DelegateLoadError",
    "DelegateSpec",
    "EdgeTpuModelError",
    "InputImageError",
    "InvalidModelError",
    "InvokeError",
    "Model",
    "ModelConfigError",
    "ModelNotFoundError",
    "RuntimeModelError",
    "UnsupportedOperatorError",
    "make_interpreter",
]

_LAZY = {
    "Model": "edge_sdk.runtime.model",
    "DelegateSpec": "edge_sdk.runtime.interpreter",
    "make_interpreter": "edge_sdk.runtime.interpreter",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'edge_sdk.runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
