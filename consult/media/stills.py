"""Stills of the customer's hand: the camera's own photo, and the best frame of the stream.

A capture makes up to two stills under one capture id (docs/stills.md):

- ``camera``: the customer's page uploads its camera's photo. ``Stills.receive_upload`` streams
  the body to a staged file (hashing and counting as it goes), checks the format and the pixel
  count from the header before decoding, decodes it fully (a corrupt or truncated image is
  refused), measures it, and stores the bytes exactly as received.
- ``native``: where the browser cannot take a photo, the page offers the device's own camera
  app and uploads its photo the same way, within the capture's window.
- ``video``: ``best_of_burst`` reads about half a second of the customer's decoded video and
  keeps the sharpest frame that shows a hand; ``Stills.save_video`` stores it as lossless PNG.

All decoding, measuring and encoding runs in an executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from av import VideoFrame
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import (
    AlreadyUploaded,
    CorruptImage,
    PayloadTooLarge,
    PhotoRefused,
    StorageFailed,
    TooManyPixels,
    UnsupportedHeic,
    UnsupportedMedia,
)
from ..recording.files import StillFiles
from ..recording.store import Source, Still, Store
from .forward import Inlet
from .quality import Assessment, assess, frame_score

__all__ = ["VIDEO_STILL_LEAD", "Limits", "Stills", "best_of_burst", "still_json"]

logger = logging.getLogger(__name__)

FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg")}
THUMB_SIDE = 320
#: How long a video still's burst lasts, and how long it may wait for a first frame: a phone
#: taking its full-size photo at the same moment stalls its video for up to a second or so.
BURST_SECONDS = 0.5
BURST_MAX_SECONDS = 3.0
#: While no frame has come, the key-frame request is repeated this often: one sent while the
#: camera stalled, or lost on the way, must not cost the still.
KEYFRAME_RETRY_SECONDS = 0.5
#: The video still is taken this long before the camera's photo: a browser taking a full-size
#: photo stalls its video (Chromium: 0.8-2.9 s measured here), so the burst (a key frame, then
#: half a second of frames) comes first, during the countdown's last moment.
VIDEO_STILL_LEAD = 0.8


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000


@dataclass(frozen=True)
class Measured:
    media_type: str
    extension: str
    width: int
    height: int
    assessment: Assessment
    thumbnail: bytes


def thumbnail(bgr: np.ndarray) -> bytes:
    height, width = bgr.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(height, width))
    small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("thumbnail encoding failed")
    return bytes(data)


#: ISO base media "brands" of HEIC/HEIF photos (an iPhone's default format).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}


def is_heif(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def measure_upload(path: Path, max_pixels: int) -> Measured:
    """Check and measure an uploaded image (in an executor)."""
    with path.open("rb") as f:
        if is_heif(f.read(12)):
            raise UnsupportedHeic()
    try:
        with Image.open(path) as image:
            if image.format not in FORMATS:
                raise UnsupportedMedia()
            width, height = image.size
            # From the header, before a single pixel is decoded.
            if width * height > max_pixels:
                raise TooManyPixels(
                    f"The image has {width}x{height} pixels; at most {max_pixels} are allowed."
                )
            image.load()
            media_type, extension = FORMATS[image.format]
            # What people see: phones store portrait photos sideways with an EXIF turn.
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (UnsupportedMedia, TooManyPixels):
        raise
    except UnidentifiedImageError:
        raise UnsupportedMedia() from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptImage(f"The image cannot be decoded: {exc}.") from None
    bgr = np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])
    return Measured(
        media_type,
        extension,
        bgr.shape[1],
        bgr.shape[0],
        assess(bgr),
        thumbnail(bgr),
    )


def copy_i420(frame: VideoFrame) -> np.ndarray:
    """The frame's pixels as one I420 array (OpenCV's layout), copied: on the event loop.

    The same frame object is being encoded for the partner in aiortc's encoder thread, and
    PyAV's reformat() on one frame from two threads crashes the process; so nothing here asks
    PyAV to convert: the planes are copied as they are, and OpenCV converts the copy.
    """
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        raise ValueError(f"unexpected decoded format {frame.format.name}")
    width, height = frame.width & ~1, frame.height & ~1
    out = np.empty((height * 3 // 2, width), np.uint8)
    y = np.frombuffer(memoryview(frame.planes[0]), np.uint8).reshape(-1, frame.planes[0].line_size)
    out[:height] = y[:height, :width]
    for index, start in ((1, height), (2, height + height // 4)):
        plane = frame.planes[index]
        chroma = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        out[start : start + height // 4] = chroma[: height // 2, : width // 2].reshape(-1, width)
    return out


def encode_frame(i420: np.ndarray) -> tuple[bytes, Measured]:
    """A copied video frame as lossless PNG, measured (in an executor)."""
    bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    ok, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    height, width = bgr.shape[:2]
    return bytes(png), Measured("image/png", "png", width, height, assess(bgr), thumbnail(bgr))


def encode_png(bgr: np.ndarray) -> tuple[bytes, Measured]:
    """A derived image as lossless PNG, measured (in an executor)."""
    ok, png = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    height, width = bgr.shape[:2]
    return bytes(png), Measured("image/png", "png", width, height, assess(bgr), thumbnail(bgr))


def score_frame(i420: np.ndarray) -> float:
    """The quality gate's sharpness of the hand in a copied frame (docs/stills.md)."""
    return frame_score(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))


async def best_of_burst(
    inlet: Inlet,
    *,
    seconds: float = BURST_SECONDS,
    max_seconds: float = BURST_MAX_SECONDS,
    ask_keyframe: Callable[[], Awaitable[object]] | None = None,
) -> np.ndarray | None:
    """The best frame (I420, copied) the inlet delivers in the ``seconds`` from its first one,
    which may take up to ``max_seconds`` to come (asking again for a key frame meanwhile)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    first: float | None = None
    best: np.ndarray | None = None
    best_score = -1.0
    tap = inlet.tap()
    try:
        while True:
            # The burst is counted from its first frame: the wait for a key frame (a PLI's
            # round trip, a camera's stall) must not leave it a frame or two to choose from.
            end = start + max_seconds if first is None else first + seconds
            remaining = end - loop.time()
            if remaining <= 0:
                break
            wait = (
                remaining
                if best is not None or ask_keyframe is None
                else min(remaining, KEYFRAME_RETRY_SECONDS)
            )
            try:
                async with asyncio.timeout(wait):  # not wait_for: no task of its own
                    frame = await tap.get()
            except TimeoutError:
                if best is None and ask_keyframe is not None and wait < remaining:
                    await ask_keyframe()
                    continue
                break
            if frame is None:
                break
            if not isinstance(frame, VideoFrame):
                continue
            if first is None:
                first = loop.time()
            pixels = copy_i420(frame)
            score = await loop.run_in_executor(None, score_frame, pixels)
            if score > best_score:
                best, best_score = pixels, score
    finally:
        inlet.untap(tap)
    return best


def still_json(still: Still) -> dict[str, Any]:
    """A still as the protocol shows it; pages add their token to the URLs."""
    return {
        "id": still.id,
        "capture_id": still.capture_id,
        "source": still.source,
        "media_type": still.media_type,
        "width": still.width,
        "height": still.height,
        "bytes": still.bytes,
        "sha256": still.sha256,
        "sharpness": still.sharpness,
        "exposure": still.exposure,
        "flags": still.quality.get("flags", []),
        "hints": still.quality.get("hints", []),
        "quality": still.quality,
        "created_at": still.created_at.isoformat(),
        "parent_id": still.parent_id,
        "derivation": still.derivation,
        "nails": still.nails,
        "video_width": still.video_width,
        "video_height": still.video_height,
        "url": f"/api/stills/{still.id}",
        "thumb_url": f"/api/stills/{still.id}/thumb",
    }


class Stills:
    def __init__(self, store: Store, files: StillFiles, limits: Limits | None = None) -> None:
        self._store = store
        self._files = files
        self.limits = limits or Limits()

    async def start(self) -> None:
        """Prepare the folder and clear what a crash may have left half done."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._files.prepare)
        known = await self._store.still_files()
        removed = await loop.run_in_executor(None, self._files.sweep, known)
        if removed:
            logger.warning("removed %d unfinished still files", removed)

    async def receive_upload(
        self,
        consultation_id: str,
        capture_id: str,
        chunks: AsyncIterator[bytes],
        content_length: int | None,
        source: Source = "camera",
        video_size: tuple[int, int] | None = None,
        refuse: frozenset[str] = frozenset(),
    ) -> Still:
        """Store an uploaded photo (a capture's camera or native photo, a photo sent in the
        chat, a check-in's), or raise and leave nothing behind. ``video_size``: the customer's
        video then. ``refuse``: quality flags that refuse the photo (PhotoRefused, with the
        gate's hints) rather than keep it flagged."""
        if await self._store.has_still(capture_id, source):
            raise AlreadyUploaded()
        limit = self.limits.max_bytes
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"Photos are limited to {limit // (1024 * 1024)} MB.")
        loop = asyncio.get_running_loop()
        staged, f = await loop.run_in_executor(None, self._files.stage)
        placed: list[str] = []
        try:
            digest = hashlib.sha256()
            size = 0
            with f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"Photos are limited to {limit // (1024 * 1024)} MB.")
                    digest.update(chunk)
                    await loop.run_in_executor(None, f.write, chunk)
            if size == 0:
                raise CorruptImage("The upload is empty.")
            measured = await loop.run_in_executor(
                None, measure_upload, staged, self.limits.max_pixels
            )
            if refuse.intersection(measured.assessment.flags):
                raise PhotoRefused(measured.assessment.flags, list(measured.assessment.hints))
            still_id = secrets.token_hex(12)
            placed.append(
                await loop.run_in_executor(
                    None,
                    self._files.place,
                    staged,
                    consultation_id,
                    f"{still_id}.{measured.extension}",
                )
            )
            placed.append(
                await loop.run_in_executor(
                    None,
                    self._files.write,
                    consultation_id,
                    f"{still_id}.thumb.jpg",
                    measured.thumbnail,
                )
            )
            still = self._still(
                still_id, consultation_id, capture_id, source, measured, size,
                digest.hexdigest(), placed,
            )  # fmt: skip
            if video_size is not None:
                still = replace(still, video_width=video_size[0], video_height=video_size[1])
            await self._store.add_still(still)
            return still
        except OSError as exc:
            self._discard(staged, placed)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
                raise StorageFailed() from exc
            raise
        except BaseException:
            # Cancelled (the client went away), refused or failed: nothing stays behind.
            self._discard(staged, placed)
            raise

    async def save_video(self, consultation_id: str, capture_id: str, frame: np.ndarray) -> Still:
        """Store a frame (I420, from ``best_of_burst``) as a lossless PNG still."""
        loop = asyncio.get_running_loop()
        png, measured = await loop.run_in_executor(None, encode_frame, frame)
        return await self._save_png(
            consultation_id, capture_id, "video", png, measured,
            video_width=measured.width, video_height=measured.height,
        )  # fmt: skip

    async def save_derived(
        self, parent: Still, bgr: np.ndarray, source: Source, derivation: dict[str, Any]
    ) -> Still:
        """Store an image made from ``parent`` (white-balanced, try-on) as a lossless PNG
        still of its own capture, a child of ``parent``; the parent is never changed."""
        loop = asyncio.get_running_loop()
        png, measured = await loop.run_in_executor(None, encode_png, bgr)
        capture = await self._store.create_capture(parent.consultation_id, "stylist")
        return await self._save_png(
            parent.consultation_id,
            capture.id,
            source,
            png,
            measured,
            parent_id=parent.id,
            derivation=derivation,
        )

    async def _save_png(
        self,
        consultation_id: str,
        capture_id: str,
        source: Source,
        png: bytes,
        measured: Measured,
        **derived: Any,
    ) -> Still:
        loop = asyncio.get_running_loop()
        still_id = secrets.token_hex(12)
        placed: list[str] = []
        try:
            files = ((f"{still_id}.png", png), (f"{still_id}.thumb.jpg", measured.thumbnail))
            for name, data in files:
                placed.append(
                    await loop.run_in_executor(None, self._files.write, consultation_id, name, data)
                )
            still = self._still(
                still_id, consultation_id, capture_id, source, measured, len(png),
                hashlib.sha256(png).hexdigest(), placed,
            )  # fmt: skip
            if derived:
                still = replace(still, **derived)
            await self._store.add_still(still)
            return still
        except OSError as exc:
            self._discard(None, placed)
            raise StorageFailed() from exc
        except BaseException:
            self._discard(None, placed)
            raise

    def path(self, relative: str) -> Path:
        return self._files.path(relative)

    async def remove(self, still_id: str) -> None:
        """Delete a still, its row first (a crash before the files go leaves files the next
        start sweeps away, never a row without its file)."""
        still = await self._store.delete_still(still_id)
        if still is not None:
            self._discard(None, [still.file, still.thumb])

    def _still(
        self,
        still_id: str,
        consultation_id: str,
        capture_id: str,
        source: Source,
        measured: Measured,
        size: int,
        sha256: str,
        placed: list[str],
    ) -> Still:
        quality = asdict(measured.assessment) | {"hints": measured.assessment.hints}
        return Still(
            id=still_id,
            consultation_id=consultation_id,
            capture_id=capture_id,
            source=source,
            media_type=measured.media_type,
            width=measured.width,
            height=measured.height,
            bytes=size,
            sha256=sha256,
            sharpness=measured.assessment.sharpness,
            exposure=measured.assessment.exposure,
            quality=quality,
            file=placed[0],
            thumb=placed[1],
            created_at=datetime.now(UTC),
        )

    def _discard(self, staged: Path | None, placed: list[str]) -> None:
        if staged is not None:
            staged.unlink(missing_ok=True)
        for relative in placed:
            self._files.remove(relative)
