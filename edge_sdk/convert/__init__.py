"""Cloud-side conversion of Keras and SavedModel models into checked, quantized TFLite model packages.

Public API: `convert(ConvertOptions(...)) -> ConversionReport`. TensorFlow is
imported only inside the functions that need it, never at import time.
"""

from edge_sdk.convert.errors import (
    AccuracyGateError,
    CalibrationError,
    ConversionFailedError,
    ConvertError,
    ModelCheckError,
    SourceModelError,
    SourceModelNotFoundError,
    TargetCompatibilityError,
    ValidationSetError,
)
from edge_sdk.convert.pipeline import ConvertOptions, candidate_modes, convert
from edge_sdk.convert.report import CandidateResult, ConversionReport, render_report

__all__ = [
    "AccuracyGateError",
    "CalibrationError",
    "CandidateResult",
    "ConversionFailedError",
    "ConversionReport",
    "ConvertError",
    "ConvertOptions",
    "ModelCheckError",
    "SourceModelError",
    "SourceModelNotFoundError",
    "TargetCompatibilityError",
    "ValidationSetError",
    "candidate_modes",
    "convert",
    "render_report",
]
