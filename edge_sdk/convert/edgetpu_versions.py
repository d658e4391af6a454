"""Op versions that the Edge TPU compiler cannot parse.

edgetpu_compiler 16.0, its last release, carries the TFLite op registry of its
day. A model with an op version missing from that registry is not compiled at
all, whether or not the op would map to the Edge TPU: the compiler prints
"Didn't find op for builtin opcode 'X' version 'N'" and "Model could not be
parsed". Coral publishes no op-version table, so this check uses two sources:

- The converter's `min_runtime_version` metadata: the oldest TFLite runtime
  that has every op version in the model. TensorFlow computes it from its
  table in tensorflow/lite/tools/versioning/runtime_version.cc.
- Public reports of compiler 16.0 failing on one op version (`REPORTED_REJECTIONS`).

A model that needs TFLite 2.9.0 or newer is rejected: compiler 16.0 fails on
CONV_2D version 6, which came with TFLite 2.9.0, so its registry is older. A model that needs
2.4.0 up to 2.9.0 gets a warning: compiler 14.1 failed on CONV_2D version 5
(TFLite 2.4.0), and no report found shows 16.0 parsing those versions.

NOTE: TensorFlow's table lacks some op versions, and the converter leaves a
missing version out of `min_runtime_version`. Such a version is caught only
when it is in `REPORTED_REJECTIONS`; the compiler's own run is the final word.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_sdk.convert.graph import ModelGraph

COMPILER_RELEASE = "16.0"
# The oldest TFLite runtime whose op versions compiler 16.0 is known to reject.
REJECTED_FROM_RUNTIME = (2, 9, 0)
# The oldest TFLite runtime whose op versions an earlier compiler (14.1) rejected.
UNCONFIRMED_FROM_RUNTIME = (2, 4, 0)

# (op, version) -> where compiler 16.0 was reported to fail on it.
REPORTED_REJECTIONS: dict[tuple[str, int], str] = {
    ("CONV_2D", 6): "https://github.com/google-coral/edgetpu/issues/631",
    ("EXP", 2): "https://github.com/tensorflow/tflite-micro/issues/2633",
}
EARLIER_COMPILER_REPORT = "https://github.com/tensorflow/tensorflow/issues/43288"

NEXT_STEP = (
    "Convert with a TensorFlow release whose converter still emits the older op version, or replace the layer, "
    "then run edgetpu_compiler to confirm"
)


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """The outcome of the op-version check: errors stop the coral conversion, warnings go to the report."""

    min_runtime_version: str | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"min_runtime_version": self.min_runtime_version, "errors": list(self.errors), "warnings": list(self.warnings)}


def check_op_versions(graph: ModelGraph) -> VersionCheck:
    """Check every op version of the model (CPU ops too) against what edgetpu_compiler 16.0 can parse."""
    errors = []
    for op in graph.ops:
        source = REPORTED_REJECTIONS.get((op.name, op.version))
        if source is not None:
            errors.append(
                f"op {op.position} {op.name} version {op.version}: edgetpu_compiler {COMPILER_RELEASE} fails to parse it "
                f"({source}). {NEXT_STEP}"
            )

    warnings = []
    runtime_text = graph.min_runtime_version
    runtime = _parse_version(runtime_text)
    if runtime_text is not None and runtime is None:
        warnings.append(f"min_runtime_version {runtime_text!r} in the converted model is unreadable, so op versions were checked only against reported rejections")
    elif runtime is not None and runtime >= REJECTED_FROM_RUNTIME:
        errors.append(
            f"the model needs TFLite runtime {runtime_text} for its op versions, but edgetpu_compiler {COMPILER_RELEASE} "
            f"fails on CONV_2D version 6 from TFLite {_format(REJECTED_FROM_RUNTIME)} ({REPORTED_REJECTIONS[('CONV_2D', 6)]}), "
            f"so its op registry predates that release. {NEXT_STEP}"
        )
    elif runtime is not None and runtime >= UNCONFIRMED_FROM_RUNTIME:
        warnings.append(
            f"the model needs TFLite runtime {runtime_text} for its op versions; edgetpu_compiler 14.1 failed on versions "
            f"from TFLite {_format(UNCONFIRMED_FROM_RUNTIME)} ({EARLIER_COMPILER_REPORT}) and no report confirms that "
            f"{COMPILER_RELEASE} parses them. Run edgetpu_compiler before deploying"
        )
    return VersionCheck(runtime_text, tuple(errors), tuple(warnings))


def _parse_version(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        return None


def _format(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)
