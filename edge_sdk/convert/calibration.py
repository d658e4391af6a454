"""Load a calibration set (representative dataset) for full-integer quantization.

Sources: a folder of images, a video file (N frames spread evenly over the
clip), or a `.npy`/`.npz` array. Image files and video frames, and uint8
arrays, go through `edge_sdk.runtime.preprocess.normalize`, the function the
runtime uses, so calibration gets the same numbers as inference. A float array
is taken as model input that is already normalized. Every sample is checked
before conversion starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sdk.convert.errors import CalibrationError
from edge_sdk.convert.images import VIDEO_SUFFIXES, evenly_spaced, list_images, normalize_frames, read_bgr
from edge_sdk.package.manifest import InputSpec

logger = logging.getLogger(__name__)

DEFAULT_SAMPLES = 200
ARRAY_SUFFIXES = (".npy", ".npz")
# The `.npz` key read when the archive contains more than one array (GTSRB-style files use `x`).
NPZ_IMAGE_KEY = "x"


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """Normalized model inputs [N, H, W, C] float32, where they came from, and how they were read."""

    samples: np.ndarray
    source: str
    kind: str  # "images", "video", "pixels" (uint8 array) or "tensors" (float array)

    def __len__(self) -> int:
        return int(self.samples.shape[0])


def load_calibration(path: str | Path, spec: InputSpec, samples: int = DEFAULT_SAMPLES, *, progress: bool = False) -> CalibrationSet:
    """Read up to `samples` calibration inputs from `path` for a model whose input is `spec`."""
    path = Path(path)
    if samples < 1:
        raise CalibrationError(f"--samples is {samples}: give at least 1 calibration sample (100-500 is typical)")
    if not path.exists():
        raise CalibrationError(f"calibration set {path} not found: pass a folder of images, a video file or a .npy/.npz array")

    if path.is_dir():
        calibration = _from_folder(path, spec, samples, progress)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        calibration = _from_video(path, spec, samples, progress)
    elif path.suffix.lower() in ARRAY_SUFFIXES:
        calibration = _from_array_file(path, spec, samples)
    else:
        raise CalibrationError(
            f"calibration set {path} has suffix {path.suffix or '(none)'!r}: expected a folder of images, "
            f"a video ({', '.join(VIDEO_SUFFIXES)}) or an array ({', '.join(ARRAY_SUFFIXES)})"
        )
    if len(calibration) == 0:
        raise CalibrationError(f"calibration set {path} gave no samples: add images or frames to it")
    _warn_if_constant(calibration)
    logger.info("calibration: %d %s samples from %s", len(calibration), calibration.kind, path)
    return calibration


def _from_folder(path: Path, spec: InputSpec, samples: int, progress: bool) -> CalibrationSet:
    from tqdm import tqdm

    files = list_images(path)
    if not files:
        raise CalibrationError(f"calibration folder {path} contains no image files: add .jpg or .png images of real scenes")
    chosen = [files[i] for i in evenly_spaced(len(files), samples)]
    frames = []
    for file in tqdm(chosen, desc="calibration", unit="image", disable=not progress):
        frame = read_bgr(file)
        if frame is None:
            raise CalibrationError(f"calibration image {file} could not be decoded: remove it or replace it with a valid image")
        frames.append(frame)
    return CalibrationSet(normalize_frames(frames, spec), str(path), "images")


def _from_video(path: Path, spec: InputSpec, samples: int, progress: bool) -> CalibrationSet:
    import cv2
    from tqdm import tqdm

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise CalibrationError(f"calibration video {path} could not be opened by OpenCV: check the file and its codec")
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if frame_count <= 0:
            raise CalibrationError(f"calibration video {path} reports {frame_count} frames: re-encode it or extract frames to a folder")
        selected = set(evenly_spaced(frame_count, samples))
        frames = []
        # Frames are read in order instead of seeking, because seeking lands on
        # key frames in many codecs and would repeat frames.
        for index in tqdm(range(max(selected) + 1), desc="calibration", unit="frame", disable=not progress):
            ok, frame = capture.read()
            if not ok:
                logger.warning("calibration video %s ended at frame %d of %d reported", path, index, frame_count)
                break
            if index in selected:
                frames.append(frame)
    finally:
        capture.release()
    return CalibrationSet(normalize_frames(frames, spec), str(path), "video")


def _from_array_file(path: Path, spec: InputSpec, samples: int) -> CalibrationSet:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CalibrationError(f"calibration array {path} could not be read as a numpy array ({exc}): save it with np.save or np.savez") from exc
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            array = _pick_npz_array(path, loaded)
    else:
        array = loaded
    array = array[evenly_spaced(len(array), samples)] if array.ndim >= 1 else array
    return check_samples(array, spec, str(path))


def _pick_npz_array(path: Path, archive: np.lib.npyio.NpzFile) -> np.ndarray:
    if NPZ_IMAGE_KEY in archive.files:
        return archive[NPZ_IMAGE_KEY]
    if len(archive.files) == 1:
        return archive[archive.files[0]]
    raise CalibrationError(f"calibration archive {path} contains arrays {archive.files} and none is named {NPZ_IMAGE_KEY!r}: rename the image array or keep only one")


def check_samples(array: np.ndarray, spec: InputSpec, source: str) -> CalibrationSet:
    """Check an array of calibration samples and return them as normalized float32 inputs.

    uint8 samples are pixels in the model's color order (any height and width)
    and are preprocessed like camera frames. float32 samples must already have
    the model's input shape; float64 is cast to float32 with a warning.
    """
    if not isinstance(array, np.ndarray) or array.dtype == object or not np.issubdtype(array.dtype, np.number):
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise CalibrationError(f"calibration set {source} is invalid: it contains {kind}, not a numeric image array; save images as uint8 pixels or float32 model inputs")
    if array.ndim == 3 and spec.channels == 1:
        array = array[..., np.newaxis]
    if array.ndim != 4:
        raise CalibrationError(
            f"calibration set {source} has shape {array.shape}: expected [samples, height, width, channels] "
            f"with {_count(spec.channels, 'channel')}"
        )
    if array.shape[-1] != spec.channels:
        raise CalibrationError(
            f"calibration samples of {source} have {_count(array.shape[-1], 'channel')} but the model input has {spec.channels}: "
            "convert the images to the model's color order"
        )
    if array.dtype == np.uint8:
        return CalibrationSet(normalize_frames(_pixels_to_bgr(array, spec), spec), source, "pixels")

    expected = (spec.height, spec.width, spec.channels)
    if tuple(array.shape[1:]) != expected:
        raise CalibrationError(
            f"calibration samples of {source} have shape {tuple(array.shape[1:])} but the model input is {expected}: "
            "float samples must be normalized model inputs of exactly that shape (or pass uint8 images to be resized)"
        )
    if array.dtype == np.float64:
        logger.warning("calibration set %s is float64: casting to float32, the model's input type", source)
    elif array.dtype != np.float32:
        raise CalibrationError(f"calibration set {source} has dtype {array.dtype}: expected uint8 pixels or float32 model inputs")
    finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise CalibrationError(f"calibration sample {bad} of {source} contains NaN or infinite values: fix or drop that sample")
    return CalibrationSet(array.astype(np.float32), source, "tensors")


def _count(number: int, noun: str) -> str:
    """Return "1 channel" or "3 channels"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _pixels_to_bgr(array: np.ndarray, spec: InputSpec) -> list[np.ndarray]:
    """Turn uint8 pixel samples in the model's color order into the BGR frames `normalize` expects."""
    if spec.channels == 3 and spec.color_order == "RGB":
        return [np.ascontiguousarray(sample[..., ::-1]) for sample in array]
    if spec.channels == 1:
        return [np.ascontiguousarray(sample[..., 0]) for sample in array]
    return [np.ascontiguousarray(sample) for sample in array]


def _warn_if_constant(calibration: CalibrationSet) -> None:
    spread = float(np.ptp(calibration.samples)) if calibration.samples.size else 0.0
    if spread == 0.0:
        logger.warning(
            "calibration set %s is one constant value (%g): quantization ranges will be wrong; use real frames",
            calibration.source,
            float(calibration.samples.flat[0]),
        )
