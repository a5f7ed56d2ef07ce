"""A fake camera for Chromium: a .y4m clip made from a real hand photo (tests/fixtures/hands).

Chromium loops the clip (--use-file-for-fake-video-capture); a slow drift and a little sensor
noise keep its encoder honest, as a still image would let it send almost nothing.
"""

from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np

HANDS = Path(__file__).resolve().parent / "fixtures" / "hands"


def write_wav(out: Path, seconds: float = 2.0, rate: int = 48000) -> Path:
    """A soft 440 Hz tone for the fake microphone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.2 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out


def load_photo(photo: Path) -> np.ndarray:
    """A photo as BGR; a cut-out on transparency is put on white paper."""
    image = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(photo)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255
        return (image[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return image


def write_y4m(
    photo: Path, out: Path, width: int, height: int, frames: int = 60, fps: int = 30
) -> Path:
    image = load_photo(photo)
    # Cover a frame 10% larger than the output, so the drift never shows an edge.
    big_w, big_h = int(width * 1.1), int(height * 1.1)
    scale = max(big_w / image.shape[1], big_h / image.shape[0])
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(7)
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            phase = 2 * np.pi * i / frames
            x = int((image.shape[1] - width) / 2 * (1 + 0.8 * np.sin(phase)))
            y = int((image.shape[0] - height) / 2 * (1 + 0.8 * np.cos(phase)))
            crop = image[y : y + height, x : x + width].astype(np.int16)
            crop += rng.integers(-3, 4, crop.shape, dtype=np.int16)
            yuv = cv2.cvtColor(np.clip(crop, 0, 255).astype(np.uint8), cv2.COLOR_BGR2YUV_I420)
            f.write(b"FRAME\n")
            f.write(yuv.tobytes())
    return out
