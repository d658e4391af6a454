"""The model package format shared by the converter and the runtime.

A package is a directory (or a single-file archive of one) holding the
`.tflite` model, `manifest.json` and the labels file. Nothing here imports
TensorFlow or an interpreter.
"""

from edge_sdk.package.archive import (
    PackageHashError,
    UnsafeArchiveError,
    open_package,
    pack_archive,
    write_package,
)
from edge_sdk.package.errors import ManifestError, PackageError
from edge_sdk.package.manifest import (
    SCHEMA_VERSION,
    DetectionOutputs,
    InputSpec,
    Manifest,
)

__all__ = [
    "SCHEMA_VERSION",
    "DetectionOutputs",
    "InputSpec",
    "Manifest",
    "ManifestError",
    "PackageError",
    "PackageHashError",
    "UnsafeArchiveError",
    "open_package",
    "pack_archive",
    "write_package",
]
