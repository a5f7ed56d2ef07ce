"""What a participant receives while the partner's media is not there: a card and silence.

With packet forwarding the card is encoded once per text and codec (``encoded_card``), and
every waiting participant gets those bytes: no encoder per participant (a VP8 encoder holds
about 10 MB), no encoding while waiting.
"""

from __future__ import annotations

import fractions
import functools

import av
import cv2
import numpy as np

__all__ = [
    "AUDIO_RATE",
    "AUDIO_SAMPLES",
    "CARD_FPS",
    "card_frame",
    "encoded_card",
    "prepare",
    "silence_frame",
]

AUDIO_RATE = 48000
#: 20 ms, Opus's packet time: what aiortc's decoder delivers for a partner too.
AUDIO_SAMPLES = 960
CARD_SIZE = (640, 360)
#: The card's frame rate; an encoded card is one second: a key frame, then CARD_FPS - 1 deltas.
CARD_FPS = 10
ENCODED_CODECS = ("vp8", "h264")


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
    """Draw and encode the cards ahead (in an executor at start-up): no OpenCV and no encoding
    inside a track's recv()."""
    for text in texts:
        _card_yuv(text)
        for codec in ENCODED_CODECS:
            encoded_card(text, codec)


@functools.lru_cache(maxsize=16)
def encoded_card(text: str, codec: str) -> tuple[bytes, ...]:
    """One second of the card as ``codec`` ("vp8" or "h264": constrained baseline, Annex B)
    frames: a key frame first, so any repetition of the sequence can start a stream."""
    if codec == "vp8":
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    elif codec == "h264":
        ctx = av.CodecContext.create("libx264", "w")
        ctx.options = {"profile": "baseline", "tune": "zerolatency", "preset": "veryfast"}
    else:
        raise ValueError(f"no encoded card for {codec}")
    ctx.width, ctx.height = CARD_SIZE
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, CARD_FPS)
    ctx.framerate = fractions.Fraction(CARD_FPS)
    ctx.bit_rate = 500_000
    ctx.gop_size = CARD_FPS
    frames: list[bytes] = []
    for number in range(CARD_FPS):
        frame = card_frame(text)
        frame.pts = number
        frames.append(b"".join(bytes(p) for p in ctx.encode(frame)))
    tail = b"".join(bytes(p) for p in ctx.encode(None))
    if tail:
        frames[-1] += tail
    if not all(frames):
        raise RuntimeError(f"the {codec} encoder held back card frames")
    return tuple(frames)


def card_frame(text: str) -> av.VideoFrame:
    """A new frame of the waiting card (new each time: the encoder may still hold the last)."""
    return av.VideoFrame.from_ndarray(_card_yuv(text), format="yuv420p")


def silence_frame() -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.zeros((1, AUDIO_SAMPLES * 2), np.int16), format="s16", layout="stereo"
    )
    frame.sample_rate = AUDIO_RATE
    return frame
