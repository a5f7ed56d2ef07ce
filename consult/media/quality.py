"""How good a still of a hand is: sharpness, exposure, glare, and whether a hand is there.

Pure functions on BGR ``uint8`` images (OpenCV's layout), CPU-heavy: call them from an
executor, never on the event loop. The thresholds were tuned on the hand photos in
``tests/fixtures/hands`` and ``../shared/media/hands`` and their blurred, darkened, brightened
and spotted copies (docs/stills.md has the numbers); ``tests/test_quality.py`` holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "BLUR_BELOW",
    "GLARE_ABOVE",
    "OVER_CLIPPED_ABOVE",
    "OVER_MEAN_ABOVE",
    "UNDER_MEAN_BELOW",
    "Assessment",
    "assess",
    "frame_score",
    "laplacian_variance",
    "skin_mask",
]

#: Long side of the working copy: measures do not depend on the camera's resolution.
WORK_SIDE = 640
#: Sharpness (90th percentile of the Laplacian's variance over an 8x8 grid of tiles, on the
#: working copy) below which a still is blurred. Sharp hand photos measure 40-1000; a 2 px
#: Gaussian blur takes every one of them under 20.
BLUR_BELOW = 30.0
#: Mean luminance (0-255) of the hand (of the whole picture if no hand is found).
UNDER_MEAN_BELOW = 60.0
OVER_MEAN_ABOVE = 200.0
#: Share of the hand's pixels clipped at 250 or more.
OVER_CLIPPED_ABOVE = 0.03
#: Specular highlights (small bright spots ringed by skin) as a share of the skin's area.
GLARE_ABOVE = 0.008
#: Below this share of skin-coloured pixels, there is no hand in the picture.
HAND_BELOW = 0.03

RETAKE_HINTS = {
    "blur": "hold-still",
    "underexposed": "more-light",
    "overexposed": "less-light",
    "glare": "tilt",
}


@dataclass(frozen=True)
class Assessment:
    sharpness: float
    #: Mean luminance of the hand (or picture), 0-1.
    exposure: float
    clipped: float
    glare: float
    skin: float
    flags: list[str] = field(default_factory=list)

    @property
    def hints(self) -> list[str]:
        """What to tell the customer, one hint per flag: hold-still, more-light, ..."""
        return [RETAKE_HINTS[f] for f in self.flags]


def working_copy(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = WORK_SIDE / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def skin_mask(image: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels, by the Cr/Cb box of Chai and Ngan (1999): light to dark skin."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    return cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)) > 0


def hand_region(skin: np.ndarray) -> np.ndarray:
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
    return filled > 0


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the Laplacian: the classic focus measure, comparable within one scene."""
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def tiled_sharpness(grey: np.ndarray, grid: int = 8) -> float:
    # The sharpest parts decide: a hand in focus on a plain background is sharp, though most
    # of the picture has no detail at all.
    lap = cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)
    height, width = lap.shape
    th, tw = max(1, height // grid), max(1, width // grid)
    tiles = [
        lap[r * th : (r + 1) * th, c * tw : (c + 1) * tw].var()
        for r in range(grid)
        for c in range(grid)
    ]
    return float(np.percentile(tiles, 90))


def glare_share(image: np.ndarray, grey: np.ndarray, skin: np.ndarray) -> float:
    """Specular highlights: small spots much brighter than around them, ringed by skin.

    A white background between fingers is bright too, but it is ringed by background, not skin.
    """
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
    return glare / max(int(skin.sum()), 1)


def assess(image: np.ndarray) -> Assessment:
    """Measure a still (BGR) and flag what would make the stylist ask for a retake."""
    work = working_copy(image)
    grey = cv2.cvtColor(work, cv2.COLOR_BGR2GRAY)
    skin = skin_mask(work)
    skin_share = float(skin.mean())
    hand = hand_region(skin) if skin_share >= HAND_BELOW else None
    region = grey[hand] if hand is not None and hand.any() else grey.ravel()
    mean = float(region.mean())
    clipped = float((region >= 250).mean())
    sharpness = tiled_sharpness(grey)
    glare = glare_share(work, grey, skin) if skin_share >= HAND_BELOW else 0.0
    flags = []
    if sharpness < BLUR_BELOW:
        flags.append("blur")
    if mean < UNDER_MEAN_BELOW:
        flags.append("underexposed")
    elif mean > OVER_MEAN_ABOVE or clipped > OVER_CLIPPED_ABOVE:
        flags.append("overexposed")
    if glare > GLARE_ABOVE:
        flags.append("glare")
    return Assessment(
        sharpness=round(sharpness, 2),
        exposure=round(mean / 255, 4),
        clipped=round(clipped, 4),
        glare=round(glare, 5),
        skin=round(skin_share, 4),
        flags=flags,
    )


def frame_score(grey: np.ndarray, small_bgr: np.ndarray) -> tuple[float, float]:
    """Score one frame of a burst: (variance of the Laplacian, skin share).

    The best frame of a burst is the sharpest, weighted toward frames that show a hand.
    """
    sharpness = laplacian_variance(grey)
    skin = float(skin_mask(small_bgr).mean())
    return sharpness * (0.25 + min(skin, 0.5)), skin
