"""Errors of the converter. Each message names the model or file, the rule it broke and the next step."""

from edge_sdk.errors import EdgeSdkError


class ConvertError(EdgeSdkError):
    """Base class for every error `edge-sdk convert` raises on purpose."""


class SourceModelNotFoundError(ConvertError, FileNotFoundError):
    """The model path given to the converter does not exist."""


class SourceModelError(ConvertError, ValueError):
    """The path exists but is not a Keras model or SavedModel the converter can read."""


class CalibrationError(ConvertError, ValueError):
    """The calibration set is missing, empty, or contains a sample of the wrong shape, type or values."""


class ValidationSetError(ConvertError, ValueError):
    """The labelled validation set is missing, empty or has labels the model does not know."""


class ConversionFailedError(ConvertError, RuntimeError):
    """The TFLite converter failed on this model in this quantization mode."""


class TargetCompatibilityError(ConvertError, ValueError):
    """The converted model breaks a rule of its target, such as an op that cannot run as int8 on the Edge TPU."""


class ModelCheckError(ConvertError, RuntimeError):
    """The converted model failed its post-conversion check: wrong dtypes, does not load, or disagrees with the source."""


class AccuracyGateError(ConvertError, RuntimeError):
    """No candidate stayed within the allowed accuracy drop; only the report was written.

    `report` is the `ConversionReport` with every candidate's figures.
    """

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report
