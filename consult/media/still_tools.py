"""Colour tools on a still (docs/colour.md): sample, white balance, skin undertone, try-on.

Pure functions on 8-bit BGR pixels (OpenCV's layout), CPU-bound: callers run them in an
executor. Averages and white balance work in linear light; comparisons in CIE Lab, through
``consult.colour``. Nothing here changes its input: corrected and try-on images are new arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from .. import colour
from ..errors import InvalidPolygon, InvalidRegion, NoSkinFound

__all__ = [
    "Region",
    "Sample",
    "Undertone",
    "load_upright",
    "nail_mask",
    "pixels_of",
    "sample",
    "suits",
    "try_on",
    "undertone",
    "white_balance",
]

U8 = npt.NDArray[np.uint8]
#: 8-bit sRGB code value -> linear light, exact.
_DECODE = colour.srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)
_ENCODE_STEPS = 65535
#: Linear light (quantised to 1/65535) -> 8-bit sRGB: one lookup per pixel instead of a power.
_ENCODE = np.clip(
    np.rint(colour.linear_to_srgb(np.linspace(0.0, 1.0, _ENCODE_STEPS + 1)) * 255), 0, 255
).astype(np.uint8)
#: Rows per block when a whole photo is transformed: bounds the float copies of a 12 MP photo.
_BLOCK_ROWS = 256


def load_upright(path: Path) -> U8:
    """A stored still as BGR pixels, turned the way people see it (as its width and height
    are recorded)."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    return np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])


@functools.lru_cache(maxsize=2)
def pixels_of(path: Path) -> U8:
    """``load_upright``, remembered for the last two stills (a still never changes once saved):
    a stylist sampling point after point decodes the photo once. Read-only."""
    image = load_upright(path)
    image.flags.writeable = False
    return image


@dataclass(frozen=True)
class Region:
    """A rectangle in image pixels: x, y of its top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def around(cls, x: int, y: int, radius: int) -> Region:
        return cls(x - radius, y - radius, 2 * radius + 1, 2 * radius + 1)

    def clip(self, width: int, height: int) -> Region:
        """The part inside a ``width`` x ``height`` image; InvalidRegion if none is."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        if self.w <= 0 or self.h <= 0 or x1 <= x0 or y1 <= y0:
            raise InvalidRegion(f"The region is outside the {width}x{height} image.")
        return Region(x0, y0, x1 - x0, y1 - y0)

    def of(self, image: U8) -> U8:
        return image[self.y : self.y + self.h, self.x : self.x + self.w]


def _linear(bgr: U8) -> npt.NDArray[np.float32]:
    """8-bit BGR -> linear RGB (float32)."""
    return _DECODE[bgr[..., ::-1]]


def _encode(linear: npt.NDArray[np.floating]) -> U8:
    """Linear RGB -> 8-bit BGR, clipped to the sRGB gamut."""
    index = np.rint(np.clip(linear, 0.0, 1.0) * _ENCODE_STEPS).astype(np.int32)
    return np.ascontiguousarray(_ENCODE[index][..., ::-1])


def _mean_linear(bgr: U8) -> npt.NDArray[np.float64]:
    return np.asarray(_linear(bgr).reshape(-1, 3).mean(axis=0, dtype=np.float64), np.float64)


@dataclass(frozen=True)
class Sample:
    region: Region
    #: sRGB, 0..1: the average of the region's light, encoded back.
    rgb: tuple[float, float, float]
    hex: str
    lab: tuple[float, float, float]


def sample(bgr: U8, region: Region) -> Sample:
    """The colour of a point or small region: its pixels' average in linear light."""
    inside = region.clip(bgr.shape[1], bgr.shape[0])
    rgb = colour.linear_to_srgb(_mean_linear(inside.of(bgr)))
    lab = colour.srgb_to_lab(rgb)
    return Sample(
        inside,
        (float(rgb[0]), float(rgb[1]), float(rgb[2])),
        colour.srgb_to_hex(rgb),
        (float(lab[0]), float(lab[1]), float(lab[2])),
    )


def white_balance(bgr: U8, reference: Region | None) -> tuple[U8, tuple[float, float, float]]:
    """A copy of ``bgr`` adapted so that ``reference`` (a white card or paper) becomes neutral,
    or, without one, so that the average of the picture does (grey world).

    Von Kries adaptation (CAT02) from the reference's colour to a grey of the same luminance:
    the scene keeps its brightness; only the cast goes. Returns the image and the reference's
    linear RGB.
    """
    height, width = bgr.shape[:2]
    if reference is not None:
        patch = reference.clip(width, height).of(bgr)
        # Clipped pixels no longer say what colour the light was.
        usable = patch[(patch < 250).all(axis=-1)]
        white = _mean_linear(usable if usable.size else patch.reshape(-1, 3))
    else:
        small = np.asarray(
            cv2.resize(bgr, (min(width, 512), min(height, 512)), interpolation=cv2.INTER_AREA),
            np.uint8,
        )
        usable = small[((small > 5) & (small < 250)).all(axis=-1)]
        white = _mean_linear(usable if usable.size else small)
    if white.min() <= 1e-6:
        raise InvalidRegion("The reference has no light in one colour: pick a white or grey area.")
    luminance = float(white @ (0.2126, 0.7152, 0.0722))
    matrix = colour.adaptation_matrix(white, np.full(3, luminance)).astype(np.float32)
    out = np.empty_like(bgr)
    for top in range(0, height, _BLOCK_ROWS):
        block = _linear(bgr[top : top + _BLOCK_ROWS])
        out[top : top + _BLOCK_ROWS] = _encode(block @ matrix.T)
    return out, (float(white[0]), float(white[1]), float(white[2]))


Tone = Literal["warm", "neutral", "cool"]

#: Skin hue angles (CIE Lab h_ab, degrees) at or above WARM read as warm (golden, olive),
#: at or below COOL as cool (pink, rosy); between them, neutral. Skin sits around 40-70
#: degrees; the split is set on the hand photos in tests/fixtures/hands (docs/colour.md).
WARM_HUE = 55.0
COOL_HUE = 45.0
#: Degrees past a boundary at which the call is made with full confidence.
CONFIDENT_SPAN = 8.0
#: Skin this grey (median C*ab) shows the light's colour more than the skin's.
MIN_SKIN_CHROMA = 10.0
#: Skin's hue lies in this range (degrees) under neutral light; outside it, the light's colour
#: is showing (a blue cast, or a grey-world correction misled by a coloured background).
SKIN_HUES = (15.0, 95.0)
#: Below this share of skin pixels in the picture there is no hand to judge.
MIN_SKIN_FRACTION = 0.01
_ANALYSIS_SIDE = 256
#: A picture smaller than this (pixels, either side) shows no hand to judge.
MIN_SIDE = 16


@dataclass(frozen=True)
class Undertone:
    tone: Tone
    confidence: float
    #: The median hue angle of the skin pixels, degrees.
    hue: float
    #: The median skin colour.
    lab: tuple[float, float, float]
    skin_fraction: float
    #: "white-balance-first": the skin is too grey or off-hue to judge: the light's colour
    #: shows more than the skin's; correct the photo first.
    hints: tuple[str, ...] = ()


def hand_mask(bgr: U8) -> npt.NDArray[np.bool_]:
    """The hand's skin: the foreground that GrabCut separates from a rectangle around the
    middle of the picture (where the capture guide puts the hand), less what is not
    skin-coloured (nails, sleeves, shadows, grey paper; the YCrCb box of Chai and Ngan, 1999,
    slightly widened). Colour alone would also take a wooden floor or a beige wall."""
    height, width = bgr.shape[:2]
    labels = np.zeros((height, width), np.uint8)
    rect = (int(width * 0.06), int(height * 0.06), int(width * 0.88), int(height * 0.88))
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        cv2.grabCut(bgr, labels, rect, background, foreground, 3, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        labels[:] = cv2.GC_BGD  # too small or too plain to model: colour decides, below
    hand = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    found = 0.02 <= hand.mean() <= 0.95
    if not found:
        # GrabCut found no object (a hand filling the frame, or no hand): colour decides.
        hand = np.ones_like(hand)
    ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    skin = (cr >= 133) & (cr <= 180) & (cb >= 70) & (cb <= 130) & (y > 35) & (y < 245)
    mask: npt.NDArray[np.bool_] = hand & skin
    if found and mask.sum() < 0.3 * hand.sum():
        # A strong colour cast takes most of the hand out of the box: judge the hand as it
        # is (undertone() then says the colour must be corrected first).
        mask = hand & (y > 35) & (y < 245)
    return mask


def undertone(bgr: U8) -> Undertone:
    """Warm, neutral or cool, from the median hue angle of the hand's skin (docs/colour.md)."""
    height, width = bgr.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise NoSkinFound()
    scale = min(1.0, _ANALYSIS_SIDE / max(height, width))
    small = np.asarray(
        cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
    )
    mask = hand_mask(small)
    fraction = float(mask.mean())
    if fraction < MIN_SKIN_FRACTION:
        raise NoSkinFound()
    lab = colour.srgb_to_lab(small[mask][:, ::-1] / 255.0)
    median = np.median(lab, axis=0)
    hue = float(np.median(colour.hue_angle(lab)))
    chroma = float(np.hypot(median[1], median[2]))
    tone: Tone
    hints: tuple[str, ...] = ()
    if chroma < MIN_SKIN_CHROMA or not SKIN_HUES[0] <= hue <= SKIN_HUES[1]:
        tone, confidence, hints = "neutral", 0.2, ("white-balance-first",)
    else:
        if hue >= WARM_HUE:
            tone, margin = "warm", hue - WARM_HUE
        elif hue <= COOL_HUE:
            tone, margin = "cool", COOL_HUE - hue
        else:
            tone, margin = "neutral", min(hue - COOL_HUE, WARM_HUE - hue)
        span = CONFIDENT_SPAN if tone != "neutral" else (WARM_HUE - COOL_HUE) / 2
        confidence = round(0.5 + 0.5 * min(1.0, margin / span), 2)
    return Undertone(
        tone,
        confidence,
        round(hue, 1),
        (round(float(median[0]), 1), round(float(median[1]), 1), round(float(median[2]), 1)),
        round(fraction, 3),
        hints,
    )


#: Swatches at or above this chroma (C*ab) have a hue that can clash; below it (whites, greys,
#: blacks, sheer nudes) they suit every undertone.
CHROMATIC = 12.0
#: Hue angles of yellow-based colours (coral, orange, gold, warm red, warm brown, olive).
WARM_SWATCH_HUES = (25.0, 110.0)


def suits(tone: Tone, swatch_hex: str) -> bool:
    """Whether a swatch suits an undertone: warm skin takes yellow-based shades, cool skin
    blue-based ones (pinks, berries, plums, blues, greens), neutral skin both; near-neutral
    shades suit all (docs/colour.md)."""
    lab = colour.srgb_to_lab(colour.hex_to_srgb(swatch_hex))
    if tone == "neutral" or float(np.hypot(lab[1], lab[2])) < CHROMATIC:
        return True
    low, high = WARM_SWATCH_HUES
    warm = low <= float(colour.hue_angle(lab)) < high
    return warm == (tone == "warm")


Polygon = Sequence[Sequence[float]]
MAX_POLYGONS = 20
MAX_POINTS = 200


def nail_mask(polygons: Sequence[Polygon], width: int, height: int) -> npt.NDArray[np.bool_]:
    """The pixels inside the nail outlines; InvalidPolygon for an outline off the image."""
    if not 1 <= len(polygons) <= MAX_POLYGONS:
        raise InvalidPolygon(f"Give 1 to {MAX_POLYGONS} nail outlines.")
    mask = np.zeros((height, width), np.uint8)
    for number, polygon in enumerate(polygons, 1):
        if not 3 <= len(polygon) <= MAX_POINTS:
            raise InvalidPolygon(f"Outline {number} needs 3 to {MAX_POINTS} points.")
        points = np.asarray(polygon, np.float64)
        if points.shape != (len(polygon), 2) or not np.isfinite(points).all():
            raise InvalidPolygon(f"Outline {number} must be a list of [x, y] points.")
        xs, ys = points[:, 0], points[:, 1]
        if xs.min() < 0 or ys.min() < 0 or xs.max() > width or ys.max() > height:
            raise InvalidPolygon(f"Outline {number} goes outside the {width}x{height} image.")
        cv2.fillPoly(mask, [np.rint(points).astype(np.int32)], 1)
    if not mask.any():
        raise InvalidPolygon("The outlines enclose no pixels.")
    return mask.astype(bool)


def try_on(bgr: U8, mask: npt.NDArray[np.bool_], swatch_hex: str) -> U8:
    """A copy of ``bgr`` with the masked nails in ``swatch_hex``, keeping their shading.

    In CIE Lab, each nail pixel takes the swatch's colour, shifted in lightness by how far the
    pixel was from the nails' median lightness (so curvature and shadows stay), and its highlights
    (well above the median) lose chroma as real gloss does. Pixels outside the mask are copied
    untouched.
    """
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    inside = mask[top:bottom, left:right]
    crop = bgr[top:bottom, left:right]
    lab = colour.srgb_to_lab(crop[inside][:, ::-1] / 255.0)
    lightness = lab[:, 0]
    median = float(np.median(lightness))
    spread = max(float(lightness.std()), 1.0)
    target = colour.srgb_to_lab(colour.hex_to_srgb(swatch_hex))
    shifted = target[0] + (lightness - median)
    gloss = np.clip((lightness - median - 1.5 * spread) / (2.0 * spread), 0.0, 1.0)
    recoloured = np.empty_like(lab)
    recoloured[:, 0] = np.clip(shifted, 0.0, 100.0)
    recoloured[:, 1:] = target[1:] * (1.0 - 0.8 * gloss)[:, None]
    rgb = np.clip(colour.lab_to_srgb(recoloured), 0.0, 1.0)
    out = bgr.copy()
    region = out[top:bottom, left:right]
    region[inside] = np.rint(rgb[:, ::-1] * 255.0).astype(np.uint8)
    return out
