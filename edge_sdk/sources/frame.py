"""The record a source hands to the pipeline for each captured image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image.

    `seq` counts frames captured by the source since it started, from 0, and
    keeps counting across reopens, so a gap in `seq` is a dropped frame.
    `t_mono` is `time.monotonic()` and `t_wall` is `time.time()`, both in
    seconds and both taken when the grab returned.
    """

    source_id: str
    seq: int
    t_mono: float
    t_wall: float
    image: np.ndarray

    @property
    def frame_id(self) -> str:
        """Identifier unique within one daemon run: `{source_id}:{seq}`."""
        return f"{self.source_id}:{self.seq}"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])
