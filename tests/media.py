"""Synthetic media for tests: video frames that say who sent them and which frame they are."""

from __future__ import annotations

import fractions
import functools
import math
import time

import av
import cv2
import numpy as np
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

SOURCES = {"customer": 1, "stylist": 2}
WIDTH, HEIGHT = 320, 240
COLS, ROWS = 8, 6
MARKER = (1, 0, 1, 1)


def pattern_bits(source: int, number: int) -> list[int]:
    bits = [*MARKER, (source >> 1) & 1, source & 1]
    bits += [(number >> i) & 1 for i in range(15, -1, -1)]
    bits.append(sum(bits[4:]) % 2)
    return bits


def pattern_image(source: int, number: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A grey (Y plane) image with the bits drawn as black and white cells."""
    image = np.full((height, width), 128, np.uint8)
    cw, ch = width // COLS, height // ROWS
    for i, bit in enumerate(pattern_bits(source, number)):
        r, c = divmod(i, COLS)
        image[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = 235 if bit else 16
    return image


def decode_pattern(frame: av.VideoFrame) -> tuple[int, int] | None:
    """(source, frame number) drawn in ``frame``, or None if it carries no pattern."""
    grey = frame.to_ndarray(format="gray")
    height, width = grey.shape
    cw, ch = width // COLS, height // ROWS
    bits = []
    for i in range(len(pattern_bits(0, 0))):
        r, c = divmod(i, COLS)
        cell = grey[
            r * ch + ch // 4 : (r + 1) * ch - ch // 4, c * cw + cw // 4 : (c + 1) * cw - cw // 4
        ]
        mean = float(cell.mean())
        if 70 < mean < 180:
            return None  # neither black nor white: not our pattern
        bits.append(1 if mean >= 128 else 0)
    if tuple(bits[:4]) != MARKER or sum(bits[4:-1]) % 2 != bits[-1]:
        return None
    source = bits[4] << 1 | bits[5]
    number = 0
    for bit in bits[6:22]:
        number = number << 1 | bit
    return source, number


@functools.cache
def _card_thumbnails() -> list[np.ndarray]:
    from consult.media.peer import WAITING_TEXT
    from consult.media.placeholder import card_frame

    return [_thumbnail(card_frame(text)) for text in WAITING_TEXT.values()]


def _thumbnail(frame: av.VideoFrame) -> np.ndarray:
    grey = frame.to_ndarray(format="gray")
    return cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.int16)


def is_waiting_card(frame: av.VideoFrame) -> bool:
    """Whether ``frame`` is the server's waiting card (after a trip through a video codec)."""
    thumb = _thumbnail(frame)
    return any(float(np.abs(thumb - card).mean()) < 6 for card in _card_thumbnails())


class PatternTrack(VideoStreamTrack):
    """30 fps video whose every frame carries its sender and number."""

    def __init__(self, source: int, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.source = source
        self.number = 0
        self.width, self.height = width, height
        #: frame number -> time.monotonic() when it was made, for latency measurements
        self.made_at: dict[int, float] = {}

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        y = pattern_image(self.source, self.number % 65536, self.width, self.height)
        yuv = np.concatenate([y, np.full((self.height // 2, self.width), 128, np.uint8)])
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        self.made_at[self.number % 65536] = time.monotonic()
        self.number += 1
        return frame


class PhotoTrack(VideoStreamTrack):
    """30 fps video of a photo (BGR) at a given size; with ``sharp_every``, every frame is
    blurred but one in that many, as a hand that moves and stops."""

    def __init__(self, photo: np.ndarray, width: int, height: int, sharp_every: int = 0) -> None:
        super().__init__()
        self.sharp = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        self.blurred = cv2.GaussianBlur(self.sharp, (0, 0), 3)
        self.sharp_every = sharp_every
        self.number = 0
        #: The last frame sent, as BGR: what a camera would photograph now.
        self.last_bgr = self.sharp

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        sharp = not self.sharp_every or self.number % self.sharp_every == 0
        self.last_bgr = self.sharp if sharp else self.blurred
        frame = av.VideoFrame.from_ndarray(self.last_bgr, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        self.number += 1
        return frame


class ClipTrack(VideoStreamTrack):
    """Video of a clip's frames (BGR) in a loop; assign ``frames`` to change the clip."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames = frames
        self.number = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(
            self.frames[self.number % len(self.frames)], format="bgr24"
        )
        frame.pts, frame.time_base = pts, time_base
        self.number += 1
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone, so audio that arrives is distinguishable from the server's silence."""

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        rate, samples = 48000, 960
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._samples / rate - time.monotonic()
        if wait > 0:
            import asyncio

            await asyncio.sleep(wait)
        t = (np.arange(samples) + self._samples) / rate
        tone = (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        frame = stereo_frame(tone, self._samples, rate)
        self._samples += samples
        return frame


def stereo_frame(mono: np.ndarray, pts: int, rate: int = 48000) -> av.AudioFrame:
    """``mono`` (int16 samples) as a stereo frame at ``pts`` (in samples)."""
    frame = av.AudioFrame.from_ndarray(
        np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


class ClockedPattern(PatternTrack):
    """``PatternTrack`` on a shared clock: frame n is made at ``epoch + n / 30`` (monotonic) and
    stamped with time n / 30, so its number says when it was captured."""

    def __init__(self, source: int, epoch: float) -> None:
        super().__init__(source)
        self.epoch = epoch

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        import asyncio

        await asyncio.sleep(max(0.0, self.epoch + self.number / 30 - time.monotonic()))
        return self.number * 3000, fractions.Fraction(1, 90000)


BEEP_EVERY = 1.0
BEEP_LENGTH = 0.1


class BeepTrack(AudioStreamTrack):
    """Silence with a 1 kHz beep at ``epoch + k * BEEP_EVERY`` (monotonic): with a
    ``ClockedPattern`` of the same epoch, beep k and video frame 30k were captured together."""

    def __init__(self, epoch: float) -> None:
        super().__init__()
        self.epoch = epoch
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        import asyncio

        rate, samples = 48000, 960
        await asyncio.sleep(max(0.0, self.epoch + self._samples / rate - time.monotonic()))
        t = (np.arange(samples) + self._samples) / rate
        beep = (t % BEEP_EVERY) < BEEP_LENGTH
        tone = (beep * 0.5 * 32767 * np.sin(2 * math.pi * 1000 * t)).astype(np.int16)
        frame = stereo_frame(tone, self._samples, rate)
        self._samples += samples
        return frame


def loudness(frame: av.AudioFrame, window: float = 0.005) -> list[tuple[float, float]]:
    """(time, mean level) of each ``window`` seconds of a decoded audio frame, by its own time."""
    samples = frame.to_ndarray().astype(np.float64)
    if frame.format.is_planar:
        samples = samples.mean(axis=0)
    else:
        samples = samples.reshape(-1, len(frame.layout.channels)).mean(axis=1)
    size = max(1, int(frame.sample_rate * window))
    usable = len(samples) // size * size
    levels = np.abs(samples[:usable]).reshape(-1, size).mean(axis=1)
    start = float(frame.time or 0.0)
    return [(start + i * size / frame.sample_rate, float(v)) for i, v in enumerate(levels)]


def beep_onsets(levels: list[tuple[float, float]]) -> list[float]:
    """When beeps begin: loud after at least 100 ms of quiet, in (time, level) windows."""
    if not levels:
        return []
    threshold = 0.25 * max(v for _, v in levels)
    onsets: list[float] = []
    quiet_since: float | None = None
    for at, level in sorted(levels):
        if level < threshold:
            if quiet_since is None:
                quiet_since = at
        elif quiet_since is not None and at - quiet_since >= 0.1:
            onsets.append(at)
            quiet_since = None
        else:
            quiet_since = None
    return onsets


def audio_level(frame: av.AudioFrame) -> float:
    return float(np.abs(frame.to_ndarray().astype(np.int32)).mean())


__all__ = [
    "BEEP_EVERY",
    "SOURCES",
    "BeepTrack",
    "ClockedPattern",
    "MediaStreamTrack",
    "PatternTrack",
    "PhotoTrack",
    "ToneTrack",
    "audio_level",
    "beep_onsets",
    "decode_pattern",
    "is_waiting_card",
    "loudness",
    "pattern_image",
    "stereo_frame",
]
