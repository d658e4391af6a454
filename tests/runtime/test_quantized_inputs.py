"""int8 and uint8 inputs with zero points 128, 0 and -128 give the float model's top-1."""

import cv2
import numpy as np
import pytest

from edge_sdk.runtime import Model

QUANTIZED = {
    "dominant_color_uint8_zp128.tflite": ("uint8", 128),
    "dominant_color_uint8_zp0.tflite": ("uint8", 0),
    "dominant_color_int8_zp0.tflite": ("int8", 0),
    "dominant_color_int8_zpm128.tflite": ("int8", -128),
}


def tinted_frames(count=24):
    """Noisy frames whose dominant color is known: (BGR frame, expected RGB label)."""
    rng = np.random.default_rng(11)
    frames = []
    for index in range(count):
        label = ("red", "green", "blue")[index % 3]
        base = rng.integers(30, 140, size=3)
        channel = {"red": 2, "green": 1, "blue": 0}[label]  # BGR position
        base[channel] += rng.integers(60, 110)
        noise = rng.integers(-30, 31, size=(48 + index, 64, 3))
        frames.append((np.clip(base + noise, 0, 255).astype(np.uint8), label))
    return frames


def load(models_dir, normalization, name, normalization_of=None):
    """Load a tiny model with the normalization it (or model `normalization_of`) was calibrated with."""
    values = normalization[normalization_of or name]
    return Model.load(models_dir / name, labels=models_dir / "dominant_color_labels.txt", mean=values["mean"], std=values["std"])


def test_quantized_models_cover_zero_points(models_dir, model_normalization):
    seen = set()
    for name, (dtype, zero_point) in QUANTIZED.items():
        with load(models_dir, model_normalization, name) as model:
            assert model.input_spec.dtype == dtype
            assert model.input_spec.zero_point == zero_point
            seen.add(zero_point)
    assert seen == {128, 0, -128}


@pytest.mark.parametrize("name", sorted(QUANTIZED))
def test_quantized_input_top1_matches_float(models_dir, model_normalization, name):
    # The float model is fed the same real values as the quantized copy, so scores are comparable.
    with load(models_dir, model_normalization, "dominant_color_float.tflite", name) as float_model, load(
        models_dir, model_normalization, name
    ) as quantized_model:
        for frame, expected in tinted_frames():
            float_top = float_model.predict(frame).top
            quantized_top = quantized_model.predict(frame).top
            assert float_top.label == expected
            assert quantized_top.label == float_top.label
            assert abs(quantized_top.score - float_top.score) <= 0.05


@pytest.mark.parametrize("name", sorted(QUANTIZED))
def test_quantized_input_top1_on_real_photos(models_dir, model_normalization, coral_dir, name):
    # The float model is fed the same real values as the quantized copy, so scores are comparable.
    with load(models_dir, model_normalization, "dominant_color_float.tflite", name) as float_model, load(
        models_dir, model_normalization, name
    ) as quantized_model:
        for image_name in ("parrot.jpg", "grace_hopper.bmp", "cat.bmp"):
            frame = cv2.imread(str(coral_dir / image_name))
            float_result = float_model.predict(frame)
            scores = sorted((c.score for c in float_result.classifications), reverse=True)
            if scores[0] - scores[1] < 0.2:
                continue  # too close to call after 8-bit quantization of the weights
            assert quantized_model.predict(frame).top.label == float_result.top.label, image_name


def test_identity_fast_path_only_for_matching_uint8(models_dir, model_normalization):
    expected = {"dominant_color_uint8_zp128.tflite": True, "dominant_color_uint8_zp0.tflite": True,
                "dominant_color_int8_zp0.tflite": False, "dominant_color_int8_zpm128.tflite": False}
    for name, fast in expected.items():
        with load(models_dir, model_normalization, name) as model:
            assert model.feeds_pixels_directly is fast, name


def test_bare_quantized_model_defaults_to_raw_pixels(models_dir):
    # Without mean/std a uint8 model is fed the pixels themselves.
    with Model.load(models_dir / "dominant_color_uint8_zp0.tflite") as model:
        assert model.feeds_pixels_directly
        assert model.input_spec.mean == (0.0,)
        assert model.input_spec.std == pytest.approx((255.0,))
