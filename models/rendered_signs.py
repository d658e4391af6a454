"""Training recipe for the demo's built-in sign models, on procedurally rendered road frames.

Two whole-frame classifiers over `edge_sdk.demo.render.LABELS` (`no_sign` and
five sign classes), trained only on frames this project renders:

- `edge`: a small CNN on 96x128 input, quantized to int8 for the vehicle side.
- `cloud`: a deeper CNN on 144x192 input, kept in float32 for the demo's MaaS
  worker. Its input has 1.5 times the resolution, so it classifies many of the
  distant signs that the edge model is unsure about, which is what the
  demo's escalation path shows.

Both are converted and packaged by `edge_sdk.convert` (the code behind
`edge-sdk convert`), which measures them on rendered validation frames. Run
from the repository root with TensorFlow installed (about 15 minutes per
variant on 2 busy cores):

    python models/rendered_signs.py --out edge_sdk/demo/assets

Each package is a folder with `manifest.json`, `model.tflite` and
`labels.txt`, and the converter's report lands beside it as `<variant>.report.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_sdk.demo.render import (  # noqa: E402
    FARTHEST_SIGN_M,
    LABELS,
    LANE_WIDTH_M,
    NEAREST_SIGN_M,
    SIGN_CLASSES,
    Lighting,
    SignPlacement,
    frame_label,
    render_scene,
)
from edge_sdk.package.manifest import InputSpec  # noqa: E402
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
    "cloud": Variant("rendered-signs-cloud", 144, 192, (16, 32, 64, 96, 128), "fp32", 12),
}
VERSION = "1.0.0"
VARIANT_KEYS = {variant.name: key for key, variant in VARIANTS.items()}


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

    Returns the Keras model and 300 training inputs for calibration.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x_train, y_train = make_dataset(train_count, variant, seed)
    x_val, y_val = make_dataset(val_count, variant, seed + 1)
    model = build_model(variant)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=variant.epochs, batch_size=64, callbacks=[schedule], verbose=2)
    return model, x_train[:300]


def write_validation_folder(folder: Path, count: int, seed: int) -> Path:
    """Render `count` labelled frames as PNG files, one subfolder per label, as `edge-sdk convert --validation` reads them."""
    import cv2

    rng = np.random.default_rng(seed)
    for label in LABELS:
        (folder / label).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, label = random_scene(rng)
        cv2.imwrite(str(folder / label / f"{index:05d}.png"), image)
    return folder


def package(model, variant: Variant, calibration: np.ndarray, val_count: int, seed: int, out_dir: Path) -> Path:
    """Convert and package a trained model with `edge_sdk.convert`, measured on rendered validation frames.

    The converter checks the graph, loads the result in the runtime and
    rejects a candidate that loses more than 2 points of top-1 accuracy
    against the Keras model. The package goes to `out_dir/<variant>` and the
    conversion report to `out_dir/<variant>.report.json`.
    """
    from edge_sdk.convert.pipeline import ConvertOptions, convert

    spec = float_input_spec(variant)
    with tempfile.TemporaryDirectory(prefix="rendered-signs-") as temp:
        temp_dir = Path(temp)
        np.save(temp_dir / "calibration.npy", calibration)
        labels_path = temp_dir / "labels.txt"
        labels_path.write_text("".join(f"{label}\n" for label in LABELS), encoding="utf-8")
        # Same seed as the Keras validation set, so both measure the same frames.
        validation = write_validation_folder(temp_dir / "validation", val_count, seed + 1)
        options = ConvertOptions(
            model=model,
            output=out_dir / VARIANT_KEYS[variant.name],
            target="cpu",
            quantize=variant.quantization,
            calibration=temp_dir / "calibration.npy",
            samples=len(calibration),
            validation=validation,
            labels=labels_path,
            name=variant.name,
            version=VERSION,
            task="classification",
            color_order=spec.color_order,
            resize=spec.resize,
            mean=spec.mean,
            std=spec.std,
            max_accuracy_drop=2.0,
        )
        report = convert(options)
    return Path(report.package)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and package the demo's sign models on rendered frames.")
    parser.add_argument("--out", type=Path, default=Path("edge_sdk/demo/assets"), help="folder receiving one package folder per variant")
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append", help="variant to build (repeatable; default: all)")
    parser.add_argument("--train-count", type=int, default=8000, help="rendered training frames per variant")
    parser.add_argument("--val-count", type=int, default=1000, help="rendered validation frames per variant")
    parser.add_argument("--seed", type=int, default=7, help="seed of the renderer and of Keras")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the variant's own, 12 or 14)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    for key in args.variant or sorted(VARIANTS):
        variant = VARIANTS[key]
        if args.epochs is not None:
            variant = dataclasses.replace(variant, epochs=args.epochs)
        started = time.monotonic()
        model, calibration = train(variant, args.train_count, args.val_count, args.seed)
        path = package(model, variant, calibration, args.val_count, args.seed, args.out)
        logger.info("%s: packaged in %.0f s -> %s (accuracy in %s.report.json)", key, time.monotonic() - started, path, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
