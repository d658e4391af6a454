#!/usr/bin/env python3
"""Generate the small TFLite models the runtime tests use, into tests/runtime/models/.

The runtime tests also run where TensorFlow is not installed (the
tflite-runtime environment), so the models are generated once with this
script and committed. They are our own and tiny, with hand-set weights:

- `dominant_color_*.tflite` classify an image by its dominant color
  (red, green, blue) from the channel means: logit_c = 10 * (3 * mean_c - sum of means).
  That rule does not change under a per-channel-equal shift or positive scale of the
  input, so every normalization below gives the same top-1 as the float model.
  Variants: float32 input, and full-integer copies whose inputs are uint8 with
  zero point 128 and 0, and int8 with zero point 0 and -128.
- `dominant_color_seg.tflite` applies the same rule to each pixel (a 1x1
  convolution), a float32 segmentation model with output [1, 32, 32, 3].
- `gather_out_of_range.tflite` looks up a row of a 3-row table at index
  int(10 * mean of the input): inputs in [0, 1] with a mean of 0.3 or more
  ask for a row that does not exist, so invoke fails at run time.

Usage: python tools/make_runtime_test_models.py [--out tests/runtime/models]
Needs TensorFlow (the `convert` extra); takes well under a minute.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger("make_runtime_test_models")

SIZE = 32
LABELS = ("red", "green", "blue")
LOGIT_GAIN = 10.0

# Input normalizations: real = (pixel - mean) / std. [-1, 127/128] gives scale
# 1/128 with zero point 128 (uint8) or 0 (int8); [0, 1] gives scale 1/255 with
# zero point 0 (uint8) or -128 (int8).
SIGNED = {"mean": 128.0, "std": 128.0}
UNIT = {"mean": 0.0, "std": 255.0}
QUANTIZED_VARIANTS = {
    "dominant_color_uint8_zp128.tflite": ("uint8", SIGNED),
    "dominant_color_uint8_zp0.tflite": ("uint8", UNIT),
    "dominant_color_int8_zp0.tflite": ("int8", SIGNED),
    "dominant_color_int8_zpm128.tflite": ("int8", UNIT),
}


def color_weights() -> np.ndarray:
    """Return the [3, 3] matrix with logit_c = gain * (3 * x_c - sum(x)) for RGB input channels."""
    return LOGIT_GAIN * (3.0 * np.eye(3, dtype=np.float32) - np.ones((3, 3), dtype=np.float32))


def build_classifier():
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), name="image")
    pooled = tf.keras.layers.GlobalAveragePooling2D()(inputs)
    dense = tf.keras.layers.Dense(3, name="logits")
    logits = dense(pooled)
    outputs = tf.keras.layers.Softmax(name="probabilities")(logits)
    dense.set_weights([color_weights(), np.zeros(3, dtype=np.float32)])
    return tf.keras.Model(inputs, outputs)


def build_segmenter():
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), name="image")
    conv = tf.keras.layers.Conv2D(3, 1, name="pixel_logits")
    logits = conv(inputs)
    outputs = tf.keras.layers.Softmax(name="pixel_probabilities")(logits)
    conv.set_weights([color_weights().reshape(1, 1, 3, 3), np.zeros(3, dtype=np.float32)])
    return tf.keras.Model(inputs, outputs)


def build_invoke_failure():
    import tensorflow as tf

    table = tf.constant(np.eye(3, dtype=np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="image")])
    def lookup(image):
        index = tf.cast(tf.reduce_mean(image) * 10.0, tf.int32)
        return tf.gather(table, tf.reshape(index, [1]))

    return lookup


def convert_function(function) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function).convert()


def calibration_images(count: int = 64) -> Iterator[np.ndarray]:
    """Yield uint8 RGB images: random colors plus one all-0 and one all-255 image so the input range is exact."""
    rng = np.random.default_rng(7)
    yield np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    yield np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    for _ in range(count):
        base = rng.integers(0, 256, size=3)
        noise = rng.integers(-40, 41, size=(SIZE, SIZE, 3))
        yield np.clip(base + noise, 0, 255).astype(np.uint8)


def convert_float(model) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def convert_quantized(model, dtype: str, normalization: dict[str, float]) -> bytes:
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for image in calibration_images():
            real = (image.astype(np.float32) - normalization["mean"]) / normalization["std"]
            yield [real[np.newaxis]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8 if dtype == "uint8" else tf.int8
    converter.inference_output_type = tf.uint8 if dtype == "uint8" else tf.int8
    return converter.convert()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "runtime" / "models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    classifier = build_classifier()
    files = {"dominant_color_float.tflite": convert_float(classifier)}
    for name, (dtype, normalization) in QUANTIZED_VARIANTS.items():
        files[name] = convert_quantized(classifier, dtype, normalization)
    files["dominant_color_seg.tflite"] = convert_float(build_segmenter())
    files["gather_out_of_range.tflite"] = convert_function(build_invoke_failure())

    for name, content in files.items():
        (args.out / name).write_bytes(content)
        logger.info("wrote %s (%d bytes)", args.out / name, len(content))
    (args.out / "dominant_color_labels.txt").write_text("".join(f"{label}\n" for label in LABELS), encoding="utf-8")
    normalizations = {name: normalization for name, (_, normalization) in QUANTIZED_VARIANTS.items()}
    normalizations["dominant_color_float.tflite"] = SIGNED
    normalizations["dominant_color_seg.tflite"] = SIGNED
    normalizations["gather_out_of_range.tflite"] = UNIT
    (args.out / "normalization.json").write_text(json.dumps(normalizations, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
