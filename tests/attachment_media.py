"""Small real recordings and files for the attachment tests, made with PyAV and OpenCV."""

from __future__ import annotations

import io
import math
from fractions import Fraction

import av
import cv2
import numpy as np

RATE = 48000


def recording(
    container: str,
    seconds: float,
    audio: str | None = "libopus",
    video: str | None = None,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    bit_rate: int | None = None,
) -> bytes:
    """``seconds`` of a 440 Hz tone (``audio``) and/or moving pictures (``video``, ``size``)
    in ``container`` (webm, ogg, mp4), as a browser's recorder would make them. With a
    ``bit_rate`` the pictures are noise, so the encoder spends it all (a clip of a known size)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as c:
        a = c.add_stream(audio, rate=RATE) if audio else None
        v = c.add_stream(video, rate=fps) if video else None
        if v is not None:
            v.width, v.height, v.pix_fmt = *size, "yuv420p"  # type: ignore[union-attr]
            if bit_rate is not None:
                v.bit_rate = bit_rate  # type: ignore[union-attr]
                v.options = {"preset": "ultrafast"} if video == "libx264" else {}
        if a is not None:
            frame_size = a.codec_context.frame_size or 960  # type: ignore[union-attr]
            fmt = a.codec_context.codec.audio_formats[0].name  # type: ignore[union-attr]
            for start in range(0, int(seconds * RATE), frame_size):
                t = (np.arange(frame_size) + start) / RATE
                samples = (np.sin(2 * math.pi * 440 * t) * 0.3).astype(np.float32)
                if fmt == "s16":
                    samples = (samples * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(samples[None, :], format=fmt, layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                frame.time_base = Fraction(1, RATE)
                c.mux(a.encode(frame))  # type: ignore[arg-type]
            c.mux(a.encode(None))  # type: ignore[arg-type]
        if v is not None:
            noise = np.random.default_rng(0)
            for i in range(int(seconds * fps)):
                image = (
                    noise.integers(0, 255, (size[1], size[0], 3), np.uint8)
                    if bit_rate is not None
                    else np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
                )
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                c.mux(v.encode(frame))  # type: ignore[arg-type]
            c.mux(v.encode(None))  # type: ignore[arg-type]
    return out.getvalue()


def voice_webm(seconds: float = 1.0) -> bytes:
    return recording("webm", seconds)


def pdf(pages: int = 1, padding: int = 0) -> bytes:
    """A minimal PDF, optionally padded with a comment to a size."""
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    ) * pages
    return body + b"%" + b"x" * padding + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def image(ext: str) -> bytes:
    """A small image as ``ext`` (.png, .jpg, .webp) by OpenCV."""
    _ok, data = cv2.imencode(ext, np.full((30, 40, 3), (80, 120, 200), np.uint8))
    return bytes(data)


#: What ``file`` says of a Windows program: MZ, then a PE header.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240 + b"PE\x00\x00"
