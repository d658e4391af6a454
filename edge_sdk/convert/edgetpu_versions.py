"""Op versions that the Edge TPU compiler cannot parse.

edgetpu_compiler 16.0, its last release, carries the TFLite op registry of its
day. A model with an op version missing from that registry is not compiled at
all, whether or not the op would map to the Edge TPU: the compiler prints
"Didn't find op for builtin opcode 'X' version 'N'" and "Model could not be
parsed". Coral publishes no op-version table, so this check uses three sources:

- `RUNTIME_SINCE`: the TFLite release that introduced each op version from
  2.4.0 on, as TensorFlow records it in
  tensorflow/lite/tools/versioning/runtime_version.cc.
- The converter's `min_runtime_version` metadata: the oldest TFLite runtime
  that has every op version in the model, computed by TensorFlow from that
  same table. It catches a version missing from `RUNTIME_SINCE`.
- Public reports of compiler 16.0 failing on one op version (`REPORTED_REJECTIONS`).

An op version from TFLite 2.9.0 or newer is rejected: compiler 16.0 fails on
CONV_2D version 6, which came with TFLite 2.9.0, so its registry is older.
One from 2.4.0 up to 2.9.0 gets a warning: compiler 14.1 failed on CONV_2D
version 5 (TFLite 2.4.0), and no report found shows 16.0 parsing those.

In a TFLite file the version belongs to the operator code, so every op of one
type carries the highest version any of them needs. Findings therefore name
op types, not single ops.

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


def _since(release: str, *entries: tuple[str, int]) -> dict[tuple[str, int], str]:
    return dict.fromkeys(entries, release)


# (op, version) -> the TFLite release that introduced it, for releases from 2.4.0 on.
RUNTIME_SINCE: dict[tuple[str, int], str] = {
    **_since(
        "2.4.0", ("ABS", 2), ("ADD", 3), ("BATCH_MATMUL", 3), ("CONV_2D", 5), ("CUMSUM", 1), ("GATHER", 4),
        ("MEAN", 3), ("PAD", 3), ("PADV2", 3), ("RESIZE_NEAREST_NEIGHBOR", 4), ("SLICE", 4), ("SUB", 4),
        ("SUB", 5), ("TRANSPOSE", 5),
    ),
    **_since(
        "2.5.0", ("ABS", 3), ("BATCH_MATMUL", 4), ("BROADCAST_TO", 2), ("BROADCAST_TO", 3), ("CALL_ONCE", 1),
        ("COMPLEX_ABS", 1), ("CONV_3D", 1), ("DEPTH_TO_SPACE", 2), ("FILL", 3), ("GATHER", 5), ("GATHER_ND", 3),
        ("HASHTABLE", 1), ("HASHTABLE_FIND", 1), ("HASHTABLE_IMPORT", 1), ("HASHTABLE_SIZE", 1), ("IMAG", 1),
        ("REAL", 1), ("REDUCE_MAX", 3), ("REDUCE_MIN", 3), ("RELU", 3), ("RELU6", 3), ("RESIZE_BILINEAR", 4),
        ("REVERSE_V2", 3), ("RFFT2D", 1), ("RSQRT", 2), ("SLICE", 5), ("SQUARED_DIFFERENCE", 2), ("SQUEEZE", 2),
        ("STRIDED_SLICE", 5),
    ),
    **_since(
        "2.6.0", ("ABS", 4), ("ADD", 4), ("ASSIGN_VARIABLE", 1), ("BROADCAST_ARGS", 1), ("CONV_3D_TRANSPOSE", 1),
        ("MUL", 5), ("PAD", 4), ("PADV2", 4), ("READ_VARIABLE", 1), ("REDUCE_ALL", 1), ("REDUCE_PROD", 2),
        ("STRIDED_SLICE", 6), ("VAR_HANDLE", 1),
    ),
    **_since("2.7.0", ("CAST", 2), ("DEQUANTIZE", 5), ("QUANTIZE", 3)),
    **_since(
        "2.8.0", ("BUCKETIZE", 1), ("CAST", 3), ("MULTINOMIAL", 1), ("RANDOM_STANDARD_NORMAL", 1),
        ("RANDOM_UNIFORM", 1), ("TILE", 3), ("WHERE", 2),
    ),
    **_since(
        "2.9.0", ("ARG_MAX", 3), ("ARG_MIN", 3), ("CAST", 4), ("CONV_2D", 6), ("DYNAMIC_UPDATE_SLICE", 1),
        ("GELU", 1), ("GELU", 2),
    ),
    **_since(
        "2.10.0", ("ATAN2", 1), ("RELU_0_TO_1", 1), ("UNSORTED_SEGMENT_MAX", 1), ("UNSORTED_SEGMENT_PROD", 1),
        ("UNSORTED_SEGMENT_SUM", 1),
    ),
    **_since("2.11.0", ("UNSORTED_SEGMENT_MIN", 1)),
}

NEXT_STEP = (
    "Replace those layers (for example a plain Conv2D for a grouped one, relu for gelu), "
    "or convert with a TensorFlow release whose converter emits older op versions, then run edgetpu_compiler to confirm"
)


@dataclass(frozen=True, slots=True)
class VersionCheck:
    """The outcome of the op-version check: errors stop the coral conversion, warnings go to the report."""

    min_runtime_version: str | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def message(self) -> str:
        """Return the errors as one message, with the reasoning and the next step once each."""
        text = f"edgetpu_compiler {COMPILER_RELEASE} cannot parse {'; '.join(self.errors)}."
        if any("reported in" not in error for error in self.errors):
            text += (
                f" Its op registry predates TFLite {_format(REJECTED_FROM_RUNTIME)}: it is reported to fail on an op version "
                f"that release added ({REPORTED_REJECTIONS[('CONV_2D', 6)]})."
            )
        return f"{text} {NEXT_STEP}"

    def to_dict(self) -> dict[str, object]:
        return {"min_runtime_version": self.min_runtime_version, "errors": list(self.errors), "warnings": list(self.warnings)}


def check_op_versions(graph: ModelGraph) -> VersionCheck:
    """Check every op type of the model (CPU ops too) against what edgetpu_compiler 16.0 can parse."""
    errors: list[str] = []
    warnings: list[str] = []
    for name, version in sorted({(op.name, op.version) for op in graph.ops}):
        source = REPORTED_REJECTIONS.get((name, version))
        release = RUNTIME_SINCE.get((name, version))
        since = _parse_version(release)
        if source is not None:
            errors.append(f"{name} version {version} (reported in {source})")
        elif since is not None and since >= REJECTED_FROM_RUNTIME:
            errors.append(f"{name} version {version} (added in TFLite {release})")
        elif since is not None and since >= UNCONFIRMED_FROM_RUNTIME:
            warnings.append(
                f"{name} version {version} was added in TFLite {release}; edgetpu_compiler 14.1 failed on op versions from "
                f"TFLite {_format(UNCONFIRMED_FROM_RUNTIME)} ({EARLIER_COMPILER_REPORT}) and no report confirms that "
                f"{COMPILER_RELEASE} parses them. Run edgetpu_compiler before deploying"
            )

    runtime_text = graph.min_runtime_version
    runtime = _parse_version(runtime_text)
    if runtime_text is not None and runtime is None:
        warnings.append(f"min_runtime_version {runtime_text!r} in the converted model is unreadable, so it was not checked")
    elif runtime is not None and runtime >= REJECTED_FROM_RUNTIME and not errors:
        errors.append(f"an op version this check has no entry for: the model needs TFLite runtime {runtime_text}")
    elif runtime is not None and runtime >= UNCONFIRMED_FROM_RUNTIME and not errors and not warnings:
        warnings.append(
            f"the model needs TFLite runtime {runtime_text} for an op version this check has no entry for; "
            f"no report confirms that edgetpu_compiler {COMPILER_RELEASE} parses it. Run edgetpu_compiler before deploying"
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
