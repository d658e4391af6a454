import cv2
import numpy as np
import pytest

from edge_sdk.package.manifest import InputSpec
from edge_sdk.runtime.errors import InputImageError
from edge_sdk.runtime.preprocess import is_identity_quantization, normalize, preprocess, resize_frame


def frame(height=540, width=960, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def quantize_reference(real, scale, zero_point, dtype):
    low, high = (0, 255) if dtype == "uint8" else (-128, 127)
    return np.clip(np.round(real / np.float32(scale)) + zero_point, low, high).astype(dtype)


def test_normalize_matches_formula_on_rgb_resize():
    image = frame()
    spec = InputSpec((1, 224, 224, 3), "float32", mean=(127.5,), std=(127.5,))
    expected_pixels = cv2.cvtColor(cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    result = normalize(image, spec)
    assert result.shape == (1, 224, 224, 3)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result[0], (expected_pixels.astype(np.float32) - 127.5) / 127.5, rtol=0, atol=1e-6)


def test_normalize_uses_per_channel_mean_and_std():
    image = np.full((10, 10, 3), (10, 20, 30), dtype=np.uint8)  # BGR
    spec = InputSpec((1, 10, 10, 3), "float32", mean=(1.0, 2.0, 3.0), std=(2.0, 4.0, 8.0))
    result = normalize(image, spec)
    np.testing.assert_allclose(result[0, 0, 0], [(30 - 1) / 2, (20 - 2) / 4, (10 - 3) / 8])


@pytest.mark.parametrize(
    "dtype, mean, std, scale, zero_point",
    [
        ("uint8", 128.0, 128.0, 1 / 128, 128),
        ("uint8", 0.0, 255.0, 1 / 255, 0),
        ("int8", 128.0, 128.0, 1 / 128, 0),
        ("int8", 0.0, 255.0, 1 / 255, -128),
        ("uint8", 127.5, 127.5, 0.0078, 127),
        ("int8", 123.7, 58.4, 0.0187, -14),
    ],
)
def test_preprocess_quantizes_like_normalize(dtype, mean, std, scale, zero_point):
    image = frame()
    spec = InputSpec((1, 96, 128, 3), dtype, mean=(mean,), std=(std,), scale=scale, zero_point=zero_point)
    tensor, _ = preprocess(image, spec)
    expected = quantize_reference(normalize(image, spec), scale, zero_point, dtype)
    assert tensor.dtype == np.dtype(dtype)
    assert tensor.shape == (1, 96, 128, 3)
    np.testing.assert_array_equal(tensor, expected)


def test_identity_quantization_feeds_resized_pixels():
    image = frame()
    spec = InputSpec((1, 224, 224, 3), "uint8", mean=(128.0,), std=(128.0,), scale=1 / 128, zero_point=128)
    pixels, _ = resize_frame(image, spec)
    tensor, _ = preprocess(image, spec)
    assert is_identity_quantization(spec)
    np.testing.assert_array_equal(tensor[0], pixels)


def test_identity_quantization_not_claimed_when_values_change():
    spec = InputSpec((1, 8, 8, 3), "uint8", mean=(127.5,), std=(127.5,), scale=1 / 128, zero_point=128)
    assert not is_identity_quantization(spec)


def test_letterbox_transform_maps_corners_back():
    image = frame(540, 960)
    spec = InputSpec((1, 300, 300, 3), "float32", resize="letterbox")
    tensor, transform = preprocess(image, spec)
    assert tensor.shape == (1, 300, 300, 3)
    # 960x540 scaled to 300x169 leaves bars of 65 and 66 rows above and below.
    assert transform.offset_y == 65
    assert np.all(tensor[0, :65] == 0)
    x, y = transform.to_frame_xy(np.array([0.0, 300.0]), np.array([65.0, 65.0 + 540 * transform.scale_y]))
    np.testing.assert_allclose(x, [0.0, 960.0], atol=1e-6)
    np.testing.assert_allclose(y, [0.0, 540.0], atol=1e-6)


def test_center_crop_transform_maps_center_back():
    image = frame(540, 960)
    spec = InputSpec((1, 100, 100, 3), "float32", resize="center_crop")
    _, transform = preprocess(image, spec)
    x, y = transform.to_frame_xy(np.array([0.0, 50.0, 100.0]), np.array([0.0, 50.0, 100.0]))
    np.testing.assert_allclose(x, [210.0, 480.0, 750.0], atol=1e-6)
    np.testing.assert_allclose(y, [0.0, 270.0, 540.0], atol=1e-6)


def test_stretch_boxes_scale_to_frame_pixels():
    spec = InputSpec((1, 300, 300, 3), "float32")
    _, transform = preprocess(frame(540, 960), spec)
    boxes = transform.normalized_boxes_to_frame(np.array([[0.25, 0.5, 0.75, 1.0]]))
    np.testing.assert_allclose(boxes, [[240.0, 270.0, 720.0, 540.0]], atol=1e-6)


def test_gray_bgra_and_single_channel_frames():
    bgr = frame(60, 80)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgb_spec = InputSpec((1, 30, 40, 3), "float32")
    np.testing.assert_array_equal(normalize(bgra, rgb_spec), normalize(bgr, rgb_spec))
    from_gray = normalize(gray, rgb_spec)
    assert from_gray.shape == (1, 30, 40, 3)
    np.testing.assert_array_equal(from_gray[..., 0], from_gray[..., 2])
    gray_spec = InputSpec((1, 30, 40, 1), "uint8", color_order="GRAY", scale=1.0, zero_point=0)
    tensor, _ = preprocess(bgr, gray_spec)
    assert tensor.shape == (1, 30, 40, 1)
    np.testing.assert_array_equal(tensor[0, :, :, 0], cv2.resize(gray, (40, 30), interpolation=cv2.INTER_LINEAR))


def test_bgr_color_order_keeps_channels():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[..., 0] = 200  # blue in BGR
    result = normalize(image, InputSpec((1, 4, 4, 3), "float32", color_order="BGR"))
    assert result[0, 0, 0, 0] == 200.0
    assert result[0, 0, 0, 2] == 0.0


def test_float16_input_is_cast():
    tensor, _ = preprocess(frame(20, 20), InputSpec((1, 8, 8, 3), "float16", mean=(127.5,), std=(127.5,)))
    assert tensor.dtype == np.float16


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10, 3), dtype=np.uint8), "shape"),
        (np.zeros((10, 10, 2), dtype=np.uint8), "shape"),
        (np.zeros((10, 10, 3), dtype=np.float32), "dtype float32"),
        ([[1, 2], [3, 4]], "list"),
        (None, "NoneType"),
    ],
)
def test_preprocess_rejects_bad_frames(bad, message):
    with pytest.raises(InputImageError, match=message):
        preprocess(bad, InputSpec((1, 8, 8, 3), "float32"))
