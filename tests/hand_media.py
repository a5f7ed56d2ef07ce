"""The real hand photos and videos in tests/fixtures/hands, and the videos' labelled frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .fake_camera import HANDS

VIDEOS = HANDS / "videos"
PHOTOS = sorted(p for p in HANDS.iterdir() if p.suffix in (".jpg", ".png"))
VIDEO_FILES = sorted(VIDEOS.glob("*.mp4"))
#: Per video: "sharp", "soft" and "limit" lists of inclusive frame ranges (videos/SOURCES.md).
LABELS: dict[str, dict[str, list[list[int]]]] = json.loads((VIDEOS / "labels.json").read_text())


def labelled(name: str, kind: str) -> list[int]:
    """The frame numbers of one kind ("sharp", "soft", "limit") in a video."""
    return [i for first, last in LABELS[name][kind] for i in range(first, last + 1)]


def read_frames(video: Path, wanted: set[int] | None = None) -> dict[int, np.ndarray]:
    """Frames of a video (BGR) by number, decoded in order; all of them without ``wanted``."""
    capture = cv2.VideoCapture(str(video))
    frames: dict[int, np.ndarray] = {}
    try:
        number = 0
        while wanted is None or len(frames) < len(wanted):
            ok = capture.grab()
            if not ok:
                break
            if wanted is None or number in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames[number] = frame
            number += 1
    finally:
        capture.release()
    if wanted is not None and len(frames) < len(wanted):
        raise ValueError(f"{video.name}: frames {sorted(wanted - frames.keys())} are missing")
    return frames
