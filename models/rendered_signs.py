"""Training recipe for the demo's built-in sign models, on procedurally rendered road frames.

Two whole-frame classifiers over `edge_sdk.demo.render.LABELS` (`no_sign` and
five sign classes), trained only on frames this project renders:

- `edge`: a small CNN on 96x128 input, quantized to int8 for the vehicle side.
- `cloud`: a wider CNN on 144x192 input, kept in float32 for the demo's MaaS
  worker. Its input has 1.5 times the resolution, so it classifies many of the
  distant signs that the edge model is unsure about, which is what the
  demo's escalation path shows.

Run from the repository root (TensorFlow needed; a few minutes on 2 cores):

    python models/rendered_signs.py --out edge_sdk/demo/assets

Each package is a folder with `manifest.json`, `model.tflite` and `labels.txt`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_sdk.demo.render import (  # noqa: E402
    FARTHEST_SIGN_M,
    LABELS,
    LANE_WIDTH_M,
    NEAREST_SIGN_M,
    NO_SIGN,
    SIGN_CLASSES,
    Lighting,
    SignPlacement,
    frame_label,
    render_scene,
)
from edge_sdk.package.archive import write_package  # noqa: E402
from edge_sdk.package.manifest import InputSpec, Manifest  # noqa: E402
from edge_sdk.runtime.preprocess import normalize  # noqa: E402

logger = logging.getLogger(__name__)

RENDER_WIDTH, RENDER_HEIGHT = 320, 240


@dataclass(frozen=True, slots=True)
class Variant:
    """One model of the recipe: input size, layer widths, quantization and training length."""

    name: str
    height: int
    width: int
    filters: tuple[int, ...]
    quantization: str
    epochs: int


VARIANTS = {
    "edge": Variant("rendered-signs-edge", 96, 128, (16, 32, 48, 64), "int8", 14),
    "cloud": Variant("rendered-signs-cloud", 144, 192, (24, 48, 96, 128, 128), "fp32", 14),
}
VERSION = "1.0.0"


def random_scene(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Render one random training frame (BGR, 320x240) and return it with its label."""
    signs: tuple[SignPlacement, ...] = ()
    if rng.random() < 0.72:
        label = SIGN_CLASSES[rng.integers(len(SIGN_CLASSES))]
        # Half of the signs are 25-70 m away, around and beyond the labelling distance
        # (about 34 m at 320 px), so the model learns that border.
        distance = rng.uniform(NEAREST_SIGN_M, 40.0) if rng.random() < 0.5 else rng.uniform(25.0, FARTHEST_SIGN_M)
        right = rng.random() < 0.8
        offset = rng.uniform(0.8, 2.0)
        lateral = 0.5 * LANE_WIDTH_M + offset if right else -1.5 * LANE_WIDTH_M - offset
        signs = (SignPlacement(label, distance, lateral),)
    lighting = Lighting(
        gain=float(rng.uniform(0.6, 1.3)),
        offset=float(rng.uniform(-30, 30)),
        blur_px=int(rng.integers(0, 2)),
        noise_sigma=float(rng.uniform(1.0, 6.0)),
    )
    image = render_scene(RENDER_WIDTH, RENDER_HEIGHT, float(rng.uniform(0, 1000)), signs, lighting, rng)
    return image, frame_label(signs, RENDER_WIDTH, RENDER_HEIGHT)


def float_input_spec(variant: Variant) -> InputSpec:
    """Return the variant's real-valued input: RGB stretched to the input size, pixel / 255."""
    return InputSpec(
        shape=(1, variant.height, variant.width, 3),
        dtype="float32",
        color_order="RGB",
        resize="stretch",
        mean=(0.0, 0.0, 0.0),
        std=(255.0, 255.0, 255.0),
    )


def to_model_input(image_bgr: np.ndarray, variant: Variant) -> np.ndarray:
    """Convert a BGR frame with the runtime's own preprocessing, so training uses the input the vehicle feeds."""
    return normalize(image_bgr, float_input_spec(variant))[0]


def make_dataset(count: int, variant: Variant, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render `count` frames and return inputs [N,H,W,3] float32 and label indices [N]."""
    rng = np.random.default_rng(seed)
    x = np.empty((count, variant.height, variant.width, 3), np.float32)
    y = np.empty(count, np.int64)
    for i in range(count):
        image, label = random_scene(rng)
        x[i] = to_model_input(image, variant)
        y[i] = LABELS.index(label)
    return x, y


def build_model(variant: Variant):
    """Build the Keras classifier of a variant (strided convolutions, global pooling, softmax)."""
    import keras

    inputs = keras.Input((variant.height, variant.width, 3), name="image")
    x = inputs
    for filters in variant.filters:
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=variant.name.replace("-", "_"))


def train(variant: Variant, train_count: int, val_count: int, seed: int):
    """Train a variant on freshly rendered frames.

    Returns the Keras model, the validation set and 300 training inputs for calibration.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x_train, y_train = make_dataset(train_count, variant, seed)
    x_val, y_val = make_dataset(val_count, variant, seed + 1)
    model = build_model(variant)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=variant.epochs, batch_size=64, callbacks=[schedule], verbose=2)
    return model, (x_val, y_val), x_train[:300]


def convert(model, variant: Variant, calibration: np.ndarray) -> bytes:
    """Convert to TFLite: full int8 (int8 input and output) for `int8`, plain float32 otherwise."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant.quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def input_spec(model_bytes: bytes, variant: Variant) -> InputSpec:
    """Describe the converted model's input tensor (dtype, quantization) for the runtime."""
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_content=model_bytes).get_input_details()[0]
    dtype = np.dtype(detail["dtype"]).name
    if dtype not in ("int8", "uint8"):
        return replace(float_input_spec(variant), dtype=dtype)
    scale, zero_point = detail["quantization"]
    return replace(float_input_spec(variant), dtype=dtype, scale=float(scale), zero_point=int(zero_point))


def evaluate_tflite(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Return the top-1 accuracy of the converted model on float inputs (quantized here when the input is)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for sample, label in zip(x, y):
        tensor = sample[None]
        if source["dtype"] in (np.int8, np.uint8):
            scale, zero_point = source["quantization"]
            info = np.iinfo(source["dtype"])
            tensor = np.clip(np.round(tensor / scale) + zero_point, info.min, info.max).astype(source["dtype"])
        interpreter.set_tensor(source["index"], tensor)
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(target["index"])[0]) == label)
    return correct / len(y)


def package_variant(directory: Path, variant: Variant, model_bytes: bytes, accuracy: float, train_count: int) -> Path:
    """Write the package folder (manifest.json, model.tflite, labels.txt) with the measured accuracy."""
    manifest = Manifest(
        name=variant.name,
        version=VERSION,
        task="classification",
        input=input_spec(model_bytes, variant),
        quantization=variant.quantization,
        score_threshold=0.5,
        created_by="models/rendered_signs.py",
        extra={
            "training_data": f"{train_count} frames rendered by edge_sdk.demo.render (no third-party data)",
            "validation_accuracy_tflite": round(accuracy, 4),
            "background_label": NO_SIGN,
        },
    )
    return write_package(directory, manifest, model_bytes, LABELS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and package the demo's sign models on rendered frames.")
    parser.add_argument("--out", type=Path, default=Path("edge_sdk/demo/assets"), help="folder receiving one package folder per variant")
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append", help="variant to build (repeatable; default: all)")
    parser.add_argument("--train-count", type=int, default=8000, help="rendered training frames per variant")
    parser.add_argument("--val-count", type=int, default=1000, help="rendered validation frames per variant")
    parser.add_argument("--seed", type=int, default=7, help="seed of the renderer and of Keras")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    for key in args.variant or sorted(VARIANTS):
        variant = VARIANTS[key]
        started = time.monotonic()
        model, (x_val, y_val), calibration = train(variant, args.train_count, args.val_count, args.seed)
        model_bytes = convert(model, variant, calibration)
        accuracy = evaluate_tflite(model_bytes, x_val, y_val)
        path = package_variant(args.out / key, variant, model_bytes, accuracy, args.train_count)
        logger.info("%s: validation accuracy %.3f (TFLite), %d bytes, %.0f s -> %s", key, accuracy, len(model_bytes), time.monotonic() - started, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
