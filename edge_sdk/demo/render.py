"""Procedural road scenes: a straight two-lane road with traffic signs driving past.

The demo's built-in source and the training data of its sign model both come
from here, so nothing third-party is needed. The camera sits 1.4 m above the
right lane and looks down the road; world points are projected with a pinhole
model (focal length in pixels = 0.9 x frame width, horizon at 45 % of the
height). A sign is 1.2 m across (larger than real ones, so the small demo
model can name it from further away) on a 2.2 m pole at the road side.

Labels are whole-frame: a frame is labelled with a sign's class when that sign
is drawn with a radius of at least `MIN_LABEL_RADIUS_FRACTION` of the frame
width, and `no_sign` otherwise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_sdk.errors import EdgeSdkError

logger = logging.getLogger(__name__)

NO_SIGN = "no_sign"
SIGN_CLASSES = ("stop", "yield", "speed_limit_50", "no_entry", "ahead_only")
LABELS = (NO_SIGN, *SIGN_CLASSES)

CAMERA_HEIGHT_M = 1.4
SIGN_CENTER_HEIGHT_M = 2.2
SIGN_RADIUS_M = 0.6
LANE_WIDTH_M = 3.6
DASH_PERIOD_M = 12.0
DASH_LENGTH_M = 4.0
NEAREST_SIGN_M = 5.0
FARTHEST_SIGN_M = 70.0
# A sign smaller than this share of the frame width is too far to name: the
# frame counts as `no_sign` (about 5 px at 320 px wide).
MIN_LABEL_RADIUS_FRACTION = 0.016

_RED = (40, 30, 200)
_WHITE = (245, 245, 245)
_BLACK = (20, 20, 20)
_BLUE = (170, 90, 20)


class RenderError(EdgeSdkError, OSError):
    """The demo clip could not be written or read back."""


@dataclass(frozen=True, slots=True)
class SignPlacement:
    """One sign in the world: class, distance ahead of the camera (m) and side of the road."""

    label: str
    distance_m: float
    lateral_m: float


@dataclass(frozen=True, slots=True)
class Lighting:
    """Per-scene photometric variation: gain and offset on all pixels, blur and noise."""

    gain: float = 1.0
    offset: float = 0.0
    blur_px: int = 0
    noise_sigma: float = 2.0


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """A rendered clip on disk and the ground-truth label of each frame."""

    path: Path
    fps: float
    width: int
    height: int
    labels: tuple[str, ...]

    @property
    def frame_count(self) -> int:
        return len(self.labels)


class _Camera:
    """Pinhole projection of road coordinates (x right, z ahead, y up; metres)."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.focal = 0.9 * width
        self.cx = width / 2.0
        self.horizon = 0.45 * height

    def project(self, x_m: float, y_m: float, z_m: float) -> tuple[float, float]:
        u = self.cx + self.focal * x_m / z_m
        v = self.horizon + self.focal * (CAMERA_HEIGHT_M - y_m) / z_m
        return u, v

    def pixels_per_metre(self, z_m: float) -> float:
        return self.focal / z_m


def label_radius_px(width: int) -> float:
    """Return the smallest sign radius in pixels that labels a frame of this width."""
    return MIN_LABEL_RADIUS_FRACTION * width


def frame_label(signs: tuple[SignPlacement, ...], width: int, height: int) -> str:
    """Return the whole-frame label: the class of the largest sign big enough to name, else `no_sign`."""
    camera = _Camera(width, height)
    best: tuple[float, str] | None = None
    for sign in signs:
        radius = SIGN_RADIUS_M * camera.pixels_per_metre(sign.distance_m)
        if radius >= label_radius_px(width) and (best is None or radius > best[0]):
            best = (radius, sign.label)
    return best[1] if best else NO_SIGN


def render_scene(
    width: int,
    height: int,
    travelled_m: float,
    signs: tuple[SignPlacement, ...] = (),
    lighting: Lighting = Lighting(),
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Draw one BGR frame of the road after `travelled_m` metres with the given signs."""
    camera = _Camera(width, height)
    image = np.empty((height, width, 3), np.uint8)
    _draw_background(image, camera)
    _draw_road(image, camera, travelled_m)
    for sign in sorted(signs, key=lambda s: -s.distance_m):
        _draw_sign(image, camera, sign)
    return _apply_lighting(image, lighting, rng or np.random.default_rng(0))


def _draw_background(image: np.ndarray, camera: _Camera) -> None:
    horizon = int(camera.horizon)
    rows = np.linspace(0.0, 1.0, max(horizon, 1))[:, None]
    sky = (np.array([235, 190, 140]) * (1 - rows) + np.array([250, 225, 200]) * rows).astype(np.uint8)
    image[:horizon] = sky[:, None, :]
    image[horizon:] = (70, 130, 80)


def _draw_road(image: np.ndarray, camera: _Camera, travelled_m: float) -> None:
    near, far = 1.5, 400.0
    left, right = -1.5 * LANE_WIDTH_M, 0.5 * LANE_WIDTH_M
    road = [camera.project(left, 0, near), camera.project(left, 0, far), camera.project(right, 0, far), camera.project(right, 0, near)]
    cv2.fillConvexPoly(image, _points(road), (95, 95, 100), lineType=cv2.LINE_AA)

    for edge in (left + 0.15, right - 0.15):
        start, end = camera.project(edge, 0, near), camera.project(edge, 0, far)
        cv2.line(image, _point(start), _point(end), _WHITE, max(1, camera.width // 160), cv2.LINE_AA)

    centre = -0.5 * LANE_WIDTH_M
    first = -(travelled_m % DASH_PERIOD_M)
    for k in range(0, 12):
        z0 = max(near, first + k * DASH_PERIOD_M)
        z1 = first + k * DASH_PERIOD_M + DASH_LENGTH_M
        if z1 <= near:
            continue
        quad = [camera.project(centre - 0.08, 0, z0), camera.project(centre - 0.08, 0, z1), camera.project(centre + 0.08, 0, z1), camera.project(centre + 0.08, 0, z0)]
        cv2.fillConvexPoly(image, _points(quad), _WHITE, lineType=cv2.LINE_AA)


def _draw_sign(image: np.ndarray, camera: _Camera, sign: SignPlacement) -> None:
    z = sign.distance_m
    ppm = camera.pixels_per_metre(z)
    base = camera.project(sign.lateral_m, 0.0, z)
    centre = camera.project(sign.lateral_m, SIGN_CENTER_HEIGHT_M, z)
    radius = SIGN_RADIUS_M * ppm
    if radius < 0.8:
        return
    pole = max(1, int(round(0.06 * ppm)))
    cv2.line(image, _point(base), _point(centre), (110, 110, 115), pole, cv2.LINE_AA)
    _SIGN_PAINTERS[sign.label](image, centre, radius)


def _paint_stop(image: np.ndarray, centre: tuple[float, float], r: float) -> None:
    octagon = [(centre[0] + r * math.cos(math.pi / 8 + k * math.pi / 4), centre[1] + r * math.sin(math.pi / 8 + k * math.pi / 4)) for k in range(8)]
    cv2.fillConvexPoly(image, _points(octagon), _WHITE, lineType=cv2.LINE_AA)
    inner = [(centre[0] + (x - centre[0]) * 0.88, centre[1] + (y - centre[1]) * 0.88) for x, y in octagon]
    cv2.fillConvexPoly(image, _points(inner), _RED, lineType=cv2.LINE_AA)
    if r >= 7:
        _centred_text(image, "STOP", centre, r * 1.3, _WHITE)


def _paint_yield(image: np.ndarray, centre: tuple[float, float], r: float) -> None:
    triangle = [(centre[0] - r, centre[1] - 0.6 * r), (centre[0] + r, centre[1] - 0.6 * r), (centre[0], centre[1] + r)]
    cv2.fillConvexPoly(image, _points(triangle), _RED, lineType=cv2.LINE_AA)
    inner = [(centre[0] + (x - centre[0]) * 0.6, centre[1] + (y - centre[1]) * 0.6 - 0.05 * r) for x, y in triangle]
    cv2.fillConvexPoly(image, _points(inner), _WHITE, lineType=cv2.LINE_AA)


def _paint_speed_limit(image: np.ndarray, centre: tuple[float, float], r: float) -> None:
    cv2.circle(image, _point(centre), int(round(r)), _RED, -1, cv2.LINE_AA)
    cv2.circle(image, _point(centre), max(1, int(round(0.75 * r))), _WHITE, -1, cv2.LINE_AA)
    if r >= 5:
        _centred_text(image, "50", centre, r * 1.2, _BLACK)


def _paint_no_entry(image: np.ndarray, centre: tuple[float, float], r: float) -> None:
    cv2.circle(image, _point(centre), int(round(r)), _RED, -1, cv2.LINE_AA)
    bar = [(centre[0] - 0.7 * r, centre[1] - 0.18 * r), (centre[0] + 0.7 * r, centre[1] - 0.18 * r), (centre[0] + 0.7 * r, centre[1] + 0.18 * r), (centre[0] - 0.7 * r, centre[1] + 0.18 * r)]
    cv2.fillConvexPoly(image, _points(bar), _WHITE, lineType=cv2.LINE_AA)


def _paint_ahead_only(image: np.ndarray, centre: tuple[float, float], r: float) -> None:
    cv2.circle(image, _point(centre), int(round(r)), _BLUE, -1, cv2.LINE_AA)
    shaft = max(1, int(round(0.22 * r)))
    cv2.line(image, _point((centre[0], centre[1] + 0.65 * r)), _point((centre[0], centre[1] - 0.2 * r)), _WHITE, shaft, cv2.LINE_AA)
    head = [(centre[0] - 0.45 * r, centre[1] - 0.1 * r), (centre[0] + 0.45 * r, centre[1] - 0.1 * r), (centre[0], centre[1] - 0.7 * r)]
    cv2.fillConvexPoly(image, _points(head), _WHITE, lineType=cv2.LINE_AA)


_SIGN_PAINTERS = {
    "stop": _paint_stop,
    "yield": _paint_yield,
    "speed_limit_50": _paint_speed_limit,
    "no_entry": _paint_no_entry,
    "ahead_only": _paint_ahead_only,
}


def _centred_text(image: np.ndarray, text: str, centre: tuple[float, float], box_width: float, color: tuple[int, int, int]) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = box_width / max(w, 1) * 0.9
    thickness = max(1, int(round(scale * 1.5)))
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (int(round(centre[0] - w / 2)), int(round(centre[1] + h / 2)))
    cv2.putText(image, text, origin, font, scale, color, thickness, cv2.LINE_AA)


def _apply_lighting(image: np.ndarray, lighting: Lighting, rng: np.random.Generator) -> np.ndarray:
    if lighting.blur_px > 0:
        k = 2 * lighting.blur_px + 1
        image = cv2.GaussianBlur(image, (k, k), 0)
    frame = image.astype(np.float32) * lighting.gain + lighting.offset
    if lighting.noise_sigma > 0:
        frame += rng.normal(0.0, lighting.noise_sigma, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _point(p: tuple[float, float]) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def _points(points: list[tuple[float, float]]) -> np.ndarray:
    return np.array([_point(p) for p in points], np.int32)


@dataclass(frozen=True, slots=True)
class DriveSchedule:
    """A drive at constant speed passing one sign every `sign_spacing_m` metres, classes in turn."""

    speed_mps: float = 12.0
    sign_spacing_m: float = 50.0
    first_sign_m: float = 35.0

    def signs_at(self, travelled_m: float) -> tuple[SignPlacement, ...]:
        """Return the signs between `NEAREST_SIGN_M` and `FARTHEST_SIGN_M` ahead of the camera."""
        signs = []
        first_index = max(0, math.floor((travelled_m - self.first_sign_m) / self.sign_spacing_m))
        for index in range(first_index, first_index + 4):
            position = self.first_sign_m + index * self.sign_spacing_m
            distance = position - travelled_m
            if NEAREST_SIGN_M <= distance <= FARTHEST_SIGN_M:
                label = SIGN_CLASSES[index % len(SIGN_CLASSES)]
                lateral = 0.5 * LANE_WIDTH_M + 1.2 if index % 4 != 3 else -1.5 * LANE_WIDTH_M - 1.2
                signs.append(SignPlacement(label, distance, lateral))
        return tuple(signs)


def drive_frames(
    width: int, height: int, fps: float, seconds: float, schedule: DriveSchedule = DriveSchedule(), seed: int = 0
) -> Iterator[tuple[np.ndarray, str]]:
    """Yield (frame, label) for each frame of a drive; sensor noise makes every frame distinct."""
    rng = np.random.default_rng(seed)
    for index in range(int(round(seconds * fps))):
        travelled = schedule.speed_mps * index / fps
        signs = schedule.signs_at(travelled)
        frame = render_scene(width, height, travelled, signs, Lighting(noise_sigma=2.5), rng)
        yield frame, frame_label(signs, width, height)


def render_clip(
    path: str | Path,
    *,
    seconds: float = 20.0,
    fps: float = 15.0,
    width: int = 320,
    height: int = 240,
    schedule: DriveSchedule = DriveSchedule(),
    seed: int = 0,
) -> ClipInfo:
    """Write a drive to an MP4 file (MPEG-4 Part 2, which every OpenCV build can write) and return its labels."""
    path = Path(path)
    if seconds <= 0 or fps <= 0 or width < 64 or height < 48:
        raise ValueError(f"clip of {seconds} s at {fps} fps, {width}x{height} is invalid: expected positive duration and rate, at least 64x48 pixels")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RenderError(f"OpenCV cannot write {path} with the mp4v codec: check the folder is writable and OpenCV has its video I/O backend")
    labels = []
    try:
        for frame, label in drive_frames(width, height, fps, seconds, schedule, seed):
            writer.write(frame)
            labels.append(label)
    finally:
        writer.release()
    if not path.is_file() or path.stat().st_size == 0:
        raise RenderError(f"OpenCV wrote no data to {path}: check free disk space and OpenCV's video I/O backend")
    logger.info("rendered %d frames (%dx%d at %.1f fps) to %s", len(labels), width, height, fps, path)
    return ClipInfo(path, fps, width, height, tuple(labels))
