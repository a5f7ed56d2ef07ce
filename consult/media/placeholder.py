"""What a participant receives while the partner's media is not there: a card and silence."""

from __future__ import annotations

import functools

import av
import cv2
import numpy as np

__all__ = ["AUDIO_RATE", "AUDIO_SAMPLES", "card_frame", "prepare", "silence_frame"]

AUDIO_RATE = 48000
#: 20 ms, Opus's packet time: what aiortc's decoder delivers for a partner too.
AUDIO_SAMPLES = 960
CARD_SIZE = (640, 360)


@functools.lru_cache(maxsize=8)
def _card_yuv(text: str) -> np.ndarray:
    width, height = CARD_SIZE
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (58, 44, 40)  # BGR: a dark, warm slate, not "broken" black
    font = cv2.FONT_HERSHEY_DUPLEX
    scale, thickness = 0.9, 2
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    cv2.putText(
        image,
        text,
        ((width - tw) // 2, (height + th) // 2),
        font,
        scale,
        (235, 230, 245),
        thickness,
        cv2.LINE_AA,
    )
    cv2.circle(image, (width // 2, height // 2 - 60), 14, (170, 150, 230), -1, cv2.LINE_AA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def prepare(texts: list[str]) -> None:
    """Draw the cards ahead (in an executor at start-up): no OpenCV inside a track's recv()."""
    for text in texts:
        _card_yuv(text)


def card_frame(text: str) -> av.VideoFrame:
    """A new frame of the waiting card (new each time: the encoder may still hold the last)."""
    return av.VideoFrame.from_ndarray(_card_yuv(text), format="yuv420p")


def silence_frame() -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, AUDIO_SAMPLES * 2), np.int16), format="s16", layout="stereo"
    )
    frame.sample_rate = AUDIO_RATE
    return frame
