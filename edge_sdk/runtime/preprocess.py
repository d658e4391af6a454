"""Turn an OpenCV BGR frame into a model's input tensor, exactly as the manifest describes.

The steps are: color conversion (`InputSpec.color_order`), resize
(`stretch`, `letterbox` or `center_crop`, always on 8-bit pixels), then
`(pixel - mean) / std` per channel, then for a quantized input
`q = round(x / scale) + zero_point` clipped to the dtype's range.

The converter calibrates with `normalize()`, and the runtime feeds the model
with `preprocess()`, so both sides see the same numbers. Because the
normalization and quantization steps act on 8-bit pixels one value at a time,
`preprocess()` applies them as one 256-entry lookup table per channel
(`cv2.LUT`). When they compose to the identity (for example mean 128, std 128,
scale 1/128, zero point 128 on a uint8 input) the resized pixels are fed as
they are, with no arithmetic at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge_sdk.package.manifest import InputSpec
from edge_sdk.runtime.errors import InputImageError, ModelConfigError

logger = logging.getLogger(__name__)

# Letterbox bars are black pixels (value 0 before normalization).
LETTERBOX_PAD_VALUE = 0

_DTYPE_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass(frozen=True, slots=True)
class InputTransform:
    """The affine map from frame pixels to model-input pixels: `input = frame * scale + offset`.

    `to_frame_*` apply the inverse, so post-processing can report boxes in the
    pixels of the frame the caller passed, whatever resize mode was used.
    """

    frame_width: int
    frame_height: int
    input_width: int
    input_height: int
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_frame_xy(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Map model-input pixel coordinates to frame pixels, clipped to the frame."""
        frame_x = (np.asarray(x, dtype=np.float64) - self.offset_x) / self.scale_x
        frame_y = (np.asarray(y, dtype=np.float64) - self.offset_y) / self.scale_y
        return np.clip(frame_x, 0.0, self.frame_width), np.clip(frame_y, 0.0, self.frame_height)

    def normalized_boxes_to_frame(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Map boxes `[N, 4]` given as (x1, y1, x2, y2) in [0, 1] of the model input to frame pixels."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        x1, y1 = self.to_frame_xy(boxes[:, 0] * self.input_width, boxes[:, 1] * self.input_height)
        x2, y2 = self.to_frame_xy(boxes[:, 2] * self.input_width, boxes[:, 3] * self.input_height)
        return np.stack([x1, y1, x2, y2], axis=1)


def resize_frame(image_bgr: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, InputTransform]:
    """Convert colors and resize a frame to the input's height and width, keeping 8-bit pixels.

    Returns an array of shape [H, W, C] (uint8) and the transform back to frame pixels.
    """
    image = _check_frame(image_bgr)
    # Swapping B and R commutes with resizing and is cheaper on the small image.
    swap_after_resize = image.ndim == 3 and image.shape[2] == 3 and spec.color_order == "RGB"
    if not swap_after_resize:
        image = _convert_color(image, spec.color_order)
    frame_height, frame_width = image.shape[:2]
    if spec.resize == "letterbox":
        resized, transform = _letterbox(image, spec.width, spec.height)
    elif spec.resize == "center_crop":
        resized, transform = _center_crop(image, spec.width, spec.height)
    else:
        resized = _resize(image, spec.width, spec.height)
        transform = InputTransform(
            frame_width, frame_height, spec.width, spec.height, spec.width / frame_width, spec.height / frame_height
        )
    if swap_after_resize:
        resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    if resized.ndim == 2:
        resized = resized[:, :, np.newaxis]
    return resized, transform


def normalize(image_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Return the float32 tensor [1, H, W, C] of `(pixel - mean) / std` after color conversion and resize.

    This is the model's real-valued input before quantization, used by the
    converter for calibration and by the runtime for float inputs.
    """
    resized, _ = resize_frame(image_bgr, spec)
    table = _float_table(spec.channels, tuple(spec.mean), tuple(spec.std))
    return _apply_table(resized, table)[np.newaxis]


def preprocess(image_bgr: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, InputTransform]:
    """Return the input tensor [1, H, W, C] of `spec.dtype` and the transform back to frame pixels.

    A uint8 or int8 input is quantized with `spec.scale` and `spec.zero_point`
    (the input tensor's own parameters). float16 inputs get the float32 values cast.
    """
    resized, transform = resize_frame(image_bgr, spec)
    if spec.is_quantized:
        table = _quantized_table(spec.channels, tuple(spec.mean), tuple(spec.std), spec.scale, spec.zero_point, spec.dtype)
        if table is None:
            tensor = resized
        else:
            tensor = _apply_table(resized, table)
    else:
        tensor = _apply_table(resized, _float_table(spec.channels, tuple(spec.mean), tuple(spec.std)))
        if spec.dtype == "float16":
            tensor = tensor.astype(np.float16)
    return tensor[np.newaxis], transform


def is_identity_quantization(spec: InputSpec) -> bool:
    """Tell whether a quantized input takes the resized uint8 pixels unchanged."""
    if spec.dtype != "uint8":
        return False
    return _quantized_table(spec.channels, tuple(spec.mean), tuple(spec.std), spec.scale, spec.zero_point, spec.dtype) is None


def _check_frame(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputImageError(f"frame is a {type(image).__name__}, expected a numpy array from OpenCV (cv2.imread or VideoCapture.read)")
    if image.size == 0 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputImageError(
            f"frame has shape {image.shape}: expected an OpenCV image [height, width] or [height, width, 1|3|4] "
            "with at least one pixel"
        )
    if image.dtype != np.uint8:
        raise InputImageError(f"frame has dtype {image.dtype}, expected uint8 pixels (0-255) as OpenCV decodes them")
    return image


def _convert_color(image: np.ndarray, color_order: str) -> np.ndarray:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        gray = image if image.ndim == 2 else image[:, :, 0]
        if color_order == "GRAY":
            return gray
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)  # RGB and BGR are the same for a gray frame
    codes = {
        (3, "RGB"): cv2.COLOR_BGR2RGB,
        (3, "GRAY"): cv2.COLOR_BGR2GRAY,
        (4, "RGB"): cv2.COLOR_BGRA2RGB,
        (4, "BGR"): cv2.COLOR_BGRA2BGR,
        (4, "GRAY"): cv2.COLOR_BGRA2GRAY,
    }
    code = codes.get((channels, color_order))
    return image if code is None else cv2.cvtColor(image, code)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    # NOTE: bilinear, not INTER_AREA, even when shrinking: on a 960x540 frame
    # INTER_AREA took about 2 ms against 0.12 ms (OpenCV 5.1, 2 x86 cores),
    # which is more than half of a mobilenet_v2 invoke. Small distant objects
    # can alias away in a large frame.
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, InputTransform]:
    frame_height, frame_width = image.shape[:2]
    scale = min(width / frame_width, height / frame_height)
    new_width = max(1, min(width, round(frame_width * scale)))
    new_height = max(1, min(height, round(frame_height * scale)))
    pad_x = (width - new_width) // 2
    pad_y = (height - new_height) // 2
    resized = _resize(image, new_width, new_height)
    canvas = np.full((height, width) + resized.shape[2:], LETTERBOX_PAD_VALUE, dtype=np.uint8)
    canvas[pad_y : pad_y + new_height, pad_x : pad_x + new_width] = resized
    transform = InputTransform(
        frame_width, frame_height, width, height, new_width / frame_width, new_height / frame_height, pad_x, pad_y
    )
    return canvas, transform


def _center_crop(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, InputTransform]:
    frame_height, frame_width = image.shape[:2]
    scale = max(width / frame_width, height / frame_height)
    crop_width = min(frame_width, max(1, round(width / scale)))
    crop_height = min(frame_height, max(1, round(height / scale)))
    left = (frame_width - crop_width) // 2
    top = (frame_height - crop_height) // 2
    resized = _resize(image[top : top + crop_height, left : left + crop_width], width, height)
    scale_x = width / crop_width
    scale_y = height / crop_height
    transform = InputTransform(
        frame_width, frame_height, width, height, scale_x, scale_y, -left * scale_x, -top * scale_y
    )
    return resized, transform


def _per_channel(values: tuple[float, ...], channels: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    return np.broadcast_to(array, (channels,)) if array.size == 1 else array


@lru_cache(maxsize=64)
def _float_table(channels: int, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Return a [256, channels] float32 table of `(pixel - mean) / std`."""
    pixels = np.arange(256, dtype=np.float32)[:, np.newaxis]
    table = (pixels - _per_channel(mean, channels)) / _per_channel(std, channels)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=64)
def _quantized_table(
    channels: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    scale: float | None,
    zero_point: int | None,
    dtype: str,
) -> np.ndarray | None:
    """Return a [256, channels] table of quantized values, or None when it is the identity on uint8."""
    if scale is None or zero_point is None:
        raise ModelConfigError(f"a {dtype} input needs a scale and a zero point, got scale={scale!r} zero_point={zero_point!r}")
    low, high = _DTYPE_RANGES[dtype]
    real = _float_table(channels, mean, std)
    quantized = np.clip(np.round(real / np.float32(scale)) + int(zero_point), low, high)
    table = quantized.astype(np.dtype(dtype))
    if dtype == "uint8" and np.array_equal(table, np.broadcast_to(np.arange(256)[:, np.newaxis], table.shape)):
        return None
    table.setflags(write=False)
    return table


def _apply_table(resized: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every uint8 pixel of a [H, W, C] image through its channel's column of `table`."""
    channels = resized.shape[2]
    if channels not in (3, 4):
        return table[resized, np.arange(channels)]
    # cv2.LUT takes one table column per image channel. It rejects int8 tables,
    # so an int8 table is applied as its uint8 bit pattern and viewed back as int8.
    if table.dtype == np.int8:
        bits = np.ascontiguousarray(table.view(np.uint8).reshape(256, 1, channels))
        return cv2.LUT(resized, bits).view(np.int8)
    lut = np.ascontiguousarray(table.reshape(256, 1, channels))
    return cv2.LUT(resized, lut)
