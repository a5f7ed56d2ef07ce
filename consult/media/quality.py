"""How good a still of a hand is: sharpness, exposure and glare measured on the hand.

Pure functions on BGR ``uint8`` images (OpenCV's layout), CPU-heavy: call them from an
executor, never on the event loop. Every measure is taken on a working copy of a fixed pixel
count (640x360's), so the same scene at 640x360, 1080p or 12 MP gets the same verdict. The
thresholds were set on the real hand photos and the frames of the real hand videos in
``tests/fixtures/hands`` and their blurred, darkened, brightened and spotted copies
(docs/stills.md has the table); ``tests/test_quality.py`` holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "BLUR_ABOVE",
    "GLARE_ABOVE",
    "HAND_BELOW",
    "OVER_CLIPPED_ABOVE",
    "OVER_MEAN_ABOVE",
    "RETAKE_HINTS",
    "UNDER_MEAN_BELOW",
    "WORK_PIXELS",
    "Assessment",
    "Hint",
    "assess",
    "edge_width",
    "frame_score",
    "laplacian_variance",
    "skin_mask",
    "working_copy",
]

U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

#: Pixels of the working copy (640x360's): a still is scaled to this many pixels, whatever
#: its own size, so a measure in pixels means the same share of the scene at any resolution.
WORK_PIXELS = 640 * 360
#: Side of the tiles the sharpness is measured in (working pixels; tiles overlap by half).
TILE = 32
#: A tile belongs to the hand when this share of it is hand.
TILE_HAND_SHARE = 0.25
#: Edge width (blur, px of the working copy) above which the hand is blurred. The real photos
#: measure 1.30-1.76, the frames of the real videos labelled sharp 1.29-1.70; those labelled
#: soft (a hand moving or out of focus) 1.95-4.13, photos under a 2 px Gaussian blur
#: 2.78-3.18, smeared sideways over 9 px 2.54-3.26 (docs/stills.md).
BLUR_ABOVE = 1.9
#: Scale (px) of the coarse derivative the finest one is compared with.
COARSE_SIGMA = 2.0
#: The width a perfectly sharp edge has once sampled into pixels.
PIXEL_SIGMA = 0.5
#: The edge width of a picture too plain (or too thin) to have an edge.
MAX_WIDTH = 99.0
#: Mean luminance (0-255) of the hand (of the whole picture if no hand is found).
UNDER_MEAN_BELOW = 60.0
OVER_MEAN_ABOVE = 200.0
#: Share of the hand's pixels at or above NEAR_CLIPPED above which the hand is overexposed:
#: the real photos have at most 1.4 %, their spotted copies (glare) 0.7-3.3 %, copies 1.9
#: times as bright 12-65 %.
OVER_CLIPPED_ABOVE = 0.08
NEAR_CLIPPED = 235
#: Specular highlights (small bright spots ringed by skin) as a share of the skin's area.
GLARE_ABOVE = 0.008
#: Below this share of skin-coloured pixels there is no hand in the picture.
HAND_BELOW = 0.03

#: Each flag's fix, as the customer should make it.
Hint = Literal["show-hand", "hold-still", "more-light", "less-light", "tilt"]
RETAKE_HINTS: dict[str, Hint] = {
    "no-hand": "show-hand",
    "blur": "hold-still",
    "underexposed": "more-light",
    "overexposed": "less-light",
    "glare": "tilt",
}


@dataclass(frozen=True)
class Assessment:
    #: 1 / edge_width: higher is sharper (a crisp edge about 0.7; blurred below 1 / BLUR_ABOVE).
    sharpness: float
    #: Mean luminance of the hand (or picture), 0-1.
    exposure: float
    #: Share of the hand's pixels at NEAR_CLIPPED (235) or more.
    clipped: float
    #: Specular spots as a share of the skin's area.
    glare: float
    #: Share of the picture that is skin-coloured.
    skin: float
    flags: list[str] = field(default_factory=list)
    #: The hand's blur: its sharpest edges' width in px of the working copy (``edge_width``).
    edge_width: float = 0.0

    @property
    def hints(self) -> list[Hint]:
        """The customer's fix for each flag, in order: show-hand, hold-still, more-light, ..."""
        return [RETAKE_HINTS[f] for f in self.flags]


def working_copy(image: U8) -> U8:
    """``image`` scaled to WORK_PIXELS pixels, its aspect kept."""
    height, width = image.shape[:2]
    scale = (WORK_PIXELS / (height * width)) ** 0.5
    if abs(scale - 1) < 0.01:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging to shrink; upscaling (a small frame) is linear, and the lost detail shows.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)


def skin_mask(image: U8) -> Mask:
    """Skin-coloured pixels, by the Cr/Cb box of Chai and Ngan (1999): light to dark skin."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    mask: Mask = cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)) > 0
    return mask


def hand_region(skin: Mask) -> Mask:
    """The hand's outline filled in: skin, and what it encloses (nails, clipped highlights)."""
    mask = skin.astype(np.uint8) * 255
    kernel = max(3, int(max(mask.shape) * 0.03)) | 1
    closed = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    )
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(closed)
    large = [c for c in contours if cv2.contourArea(c) > 0.002 * closed.size]
    cv2.drawContours(filled, large, -1, 255, -1)
    region: Mask = filled > 0
    return region


def laplacian_variance(grey: U8) -> float:
    """Variance of the Laplacian: the classic focus measure, comparable within one scene."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


#: Central differences along 0, 90, 45 and 135 degrees, per pixel of distance.
_DIRECTIONS = [
    np.array([[-0.5, 0, 0.5]], np.float32),
    np.array([[-0.5], [0], [0.5]], np.float32),
    np.array([[-0.5, 0, 0], [0, 0, 0], [0, 0, 0.5]], np.float32) / np.sqrt(2),
    np.array([[0, 0, -0.5], [0, 0, 0], [0.5, 0, 0]], np.float32) / np.sqrt(2),
]


def edge_width(grey: U8, hand: Mask | None) -> float:
    """How wide the hand's sharpest edges are, in the direction they are widest: the blur, in
    pixels of a working copy (a Gaussian's sigma; a crisp edge measures about 1.4).

    Per direction, the energy of the finest derivative against that of a derivative at
    COARSE_SIGMA: an edge blurred by sigma has (COARSE_SIGMA^2 + s^2) / s^2 times as much of
    the first, s^2 = sigma^2 + PIXEL_SIGMA^2, whatever its contrast, so a dark or a pale hand
    measures as sharp as a well-lit one. At most MAX_WIDTH (a picture with no edge at all).
    Measured in the tiles of the hand with the strongest edges (the third with most coarse
    energy) and, of those, the sharper half: the sharpest parts decide, so the softly blurred
    background behind a hand in focus does not count, and a hand moving or out of focus has
    no sharp part. The widest direction decides, so a hand moving sideways is blurred though
    its edges along the motion stay crisp.
    """
    half = TILE // 2
    height, width = (grey.shape[0] // half) * half, (grey.shape[1] // half) * half
    if height < TILE or width < TILE:
        return MAX_WIDTH
    luma = grey[:height, :width].astype(np.float32)
    coarse = cv2.GaussianBlur(luma, (0, 0), COARSE_SIGMA)
    cells = (width // half, height // half)

    def tiles(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        # Means over half-tiles, then over each 2x2 block of them: the overlapping tiles.
        cell = cv2.resize(values, cells, interpolation=cv2.INTER_AREA)
        return np.asarray(
            (cell[:-1, :-1] + cell[1:, :-1] + cell[:-1, 1:] + cell[1:, 1:]) / 4, np.float32
        )

    chosen = np.ones((cells[1] - 1, cells[0] - 1), bool)
    if hand is not None:
        on_hand = tiles(hand[:height, :width].astype(np.float32)) >= TILE_HAND_SHARE
        if on_hand.sum() >= 3:
            chosen = on_hand
    fine_energy, coarse_energy = [], []
    for kernel in _DIRECTIONS:
        fine = cv2.filter2D(luma, cv2.CV_32F, kernel)
        blurred = cv2.filter2D(coarse, cv2.CV_32F, kernel)
        fine_energy.append(tiles(fine * fine)[chosen])
        coarse_energy.append(tiles(blurred * blurred)[chosen])
    fines, coarses = np.array(fine_energy), np.array(coarse_energy)
    strength = coarses.sum(axis=0)
    strong = np.argsort(strength)[::-1][: max(6, strength.size // 3)]
    ratio = fines[:, strong].sum(axis=0) / np.maximum(strength[strong], 1e-6)
    sharp = strong[np.argsort(ratio)[::-1][: max(3, strong.size // 2)]]
    widths = []
    for fine_d, coarse_d in zip(fines, coarses, strict=True):
        kept = float(fine_d[sharp].sum()) / max(float(coarse_d[sharp].sum()), 1e-6)
        # kept = (COARSE^2 + s^2) / s^2, s^2 = sigma^2 + PIXEL_SIGMA^2 (the pixel's own width).
        spread = COARSE_SIGMA**2 / max(kept - 1, 1e-6) - PIXEL_SIGMA**2
        widths.append(float(np.sqrt(max(spread, 0.0))))
    return min(max(widths), MAX_WIDTH)


def glare_spots(grey: U8, skin: Mask) -> int:
    """Pixels of specular highlights: small spots much brighter than around them, ringed by
    skin. A white background between fingers is bright too, but it is ringed by background."""
    kernel = max(5, int(max(grey.shape) * 0.04)) | 1
    tophat = cv2.morphologyEx(
        grey, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    )
    spots = ((tophat >= 40) & (grey >= 215)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(spots, connectivity=8)
    ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    glare = 0
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < 3 or area > 0.005 * grey.size:
            continue
        x0, y0 = max(0, x - 5), max(0, y - 5)
        x1, y1 = min(grey.shape[1], x + w + 5), min(grey.shape[0], y + h + 5)
        spot = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        ring = (cv2.dilate(spot, ring_kernel) > 0) & (spot == 0)
        if ring.any() and skin[y0:y1, x0:x1][ring].mean() >= 0.6:
            glare += int(area)
    return glare


@dataclass(frozen=True)
class _Hand:
    grey: U8
    skin: Mask
    #: The filled hand, or None when too little skin shows.
    region: Mask | None
    #: Mean luminance of the hand (of the picture without one), 0-255.
    mean: float
    edge_width: float


def _measure(image: np.ndarray) -> _Hand:
    work = working_copy(np.asarray(image, np.uint8))
    grey = np.asarray(cv2.cvtColor(work, cv2.COLOR_BGR2GRAY), np.uint8)
    skin = skin_mask(work)
    region = hand_region(skin) if skin.mean() >= HAND_BELOW else None
    if region is not None and not region.any():
        region = None
    mean = float(grey[region].mean() if region is not None else grey.mean())
    return _Hand(grey, skin, region, mean, edge_width(grey, region))


def assess(image: np.ndarray) -> Assessment:
    """Measure a still (BGR) on the hand and flag what the customer should fix.

    Flags, in the order their fixes matter: ``no-hand`` (no skin-coloured area, unless the
    picture is too dark to tell), ``blur``, ``underexposed`` or ``overexposed``, ``glare``.
    Without a hand only exposure is judged besides: there is nothing to be sharp or shiny.
    """
    hand = _measure(image)
    if hand.region is not None:
        values = hand.grey[hand.region]
        spots = glare_spots(hand.grey, hand.skin)
    else:
        values, spots = hand.grey.ravel(), 0
    glare = spots / max(int(hand.skin.sum()), 1)
    clipped = float((values >= NEAR_CLIPPED).mean())
    flags = []
    dark = hand.mean < UNDER_MEAN_BELOW
    if hand.region is None and not dark:
        flags.append("no-hand")
    if hand.region is not None and hand.edge_width > BLUR_ABOVE:
        flags.append("blur")
    if dark:
        flags.append("underexposed")
    elif hand.mean > OVER_MEAN_ABOVE or clipped > OVER_CLIPPED_ABOVE:
        flags.append("overexposed")
    # Where the light clips the whole hand the fix is less light, and the spots go with it.
    if glare > GLARE_ABOVE and "overexposed" not in flags:
        flags.append("glare")
    return Assessment(
        sharpness=round(1 / max(hand.edge_width, 0.01), 3),
        exposure=round(hand.mean / 255, 4),
        clipped=round(clipped, 4),
        glare=round(glare, 5),
        skin=round(float(hand.skin.mean()), 4),
        flags=flags,
        edge_width=round(hand.edge_width, 3),
    )


def frame_score(image: np.ndarray) -> float:
    """Score one frame of a burst (BGR): the hand's sharpness, 1 / ``edge_width``, as
    ``assess`` measures it, so the burst keeps the frame with the sharpest hand.

    A frame with no hand scores a quarter as much: a frame with a hand wins unless its hand is
    four times as blurred.
    """
    hand = _measure(image)
    sharpness = 1 / max(hand.edge_width, 0.01)
    return sharpness if hand.region is not None else sharpness / 4
