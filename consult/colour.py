"""Colour maths: the one module the rest of consult calls for colour (docs/colour.md).

Built on colour-science (colour spaces, CIEDE2000, chromatic adaptation), vectorised with
numpy over any leading shape: a single colour is shape ``(3,)``, an image ``(h, w, 3)``.
Conventions: sRGB values are floats in 0..1 (``*_u8`` helpers take 8-bit), CIE Lab is D65 with
L in 0..100, and colour-science's "reference" domain-range scale.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

with warnings.catch_warnings():
    # colour-science announces its optional extras (SciPy, Matplotlib) on import; the parts
    # used here need neither.
    warnings.filterwarnings("ignore", message=r'"\w+" related API features are not available')
    import colour

__all__ = [
    "D65",
    "Nearest",
    "adaptation_matrix",
    "delta_e_2000",
    "hex_to_srgb",
    "hue_angle",
    "lab_to_srgb",
    "linear_to_srgb",
    "nearest_swatches",
    "srgb_to_hex",
    "srgb_to_lab",
    "srgb_to_linear",
]

FloatArray = npt.NDArray[np.float64]
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")

#: The CIE 1931 2° D65 white point (xy): sRGB's white, and Lab's reference white here.
D65: FloatArray = np.asarray(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])


def _srgb() -> Any:
    # IEC 61966-2-1 rounds both of sRGB's matrices to 4 decimals, so they are not each other's
    # inverse (a round trip drifts by 3e-5); the matrices derived from the primaries are.
    space = colour.RGB_COLOURSPACES["sRGB"].copy()
    space.use_derived_transformation_matrices(True)
    return space


_SRGB = _srgb()


def hex_to_srgb(value: str) -> FloatArray:
    """``#rrggbb`` -> sRGB in 0..1."""
    if not HEX.match(value):
        raise ValueError(f"not an sRGB hex colour: {value!r}")
    return np.array([int(value[i : i + 2], 16) for i in (1, 3, 5)], np.float64) / 255.0


def srgb_to_hex(rgb: npt.ArrayLike) -> str:
    """sRGB in 0..1 -> ``#rrggbb`` (rounded to the nearest 8-bit value, clipped)."""
    values = np.clip(np.rint(np.asarray(rgb, np.float64) * 255.0), 0, 255).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*values.tolist())


def srgb_to_linear(rgb: npt.ArrayLike) -> FloatArray:
    """Undo sRGB's transfer curve: light adds up (averages, white balance) only here."""
    return np.asarray(colour.models.eotf_sRGB(np.asarray(rgb, np.float64)), np.float64)


def linear_to_srgb(linear: npt.ArrayLike) -> FloatArray:
    return np.asarray(colour.models.eotf_inverse_sRGB(np.asarray(linear, np.float64)), np.float64)


def srgb_to_lab(rgb: npt.ArrayLike) -> FloatArray:
    """sRGB (0..1) -> CIE Lab (D65)."""
    xyz = colour.RGB_to_XYZ(np.asarray(rgb, np.float64), _SRGB, D65, apply_cctf_decoding=True)
    return np.asarray(colour.XYZ_to_Lab(xyz, D65), np.float64)


def lab_to_srgb(lab: npt.ArrayLike) -> FloatArray:
    """CIE Lab (D65) -> sRGB (0..1, not clipped: out-of-gamut colours fall outside 0..1)."""
    xyz = colour.Lab_to_XYZ(np.asarray(lab, np.float64), D65)
    return np.asarray(colour.XYZ_to_RGB(xyz, _SRGB, D65, apply_cctf_encoding=True), np.float64)


def delta_e_2000(lab1: npt.ArrayLike, lab2: npt.ArrayLike) -> FloatArray:
    """CIEDE2000 colour difference (kL = kC = kH = 1), broadcast over leading dimensions."""
    return np.asarray(
        colour.delta_E(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64), "CIE 2000"),
        np.float64,
    )


def hue_angle(lab: npt.ArrayLike) -> FloatArray:
    """CIE Lab hue angle h_ab in degrees, 0..360 (0 = red-magenta, 90 = yellow)."""
    array = np.asarray(lab, np.float64)
    return np.degrees(np.arctan2(array[..., 2], array[..., 1])) % 360.0


def adaptation_matrix(source_white: npt.ArrayLike, target_white: npt.ArrayLike) -> FloatArray:
    """A 3x3 matrix on *linear sRGB* that maps light seen under ``source_white`` to how it
    would look under ``target_white`` (both linear sRGB triples), by von Kries adaptation in
    the CAT02 cone space. One matrix, so a whole photo is adapted with one product per pixel.
    """
    to_xyz = np.asarray(_SRGB.matrix_RGB_to_XYZ, np.float64)
    to_rgb = np.asarray(_SRGB.matrix_XYZ_to_RGB, np.float64)
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        to_xyz @ np.asarray(source_white, np.float64),
        to_xyz @ np.asarray(target_white, np.float64),
        transform="CAT02",
    )
    return np.asarray(to_rgb @ cat @ to_xyz, np.float64)


class HasHex(Protocol):
    @property
    def hex(self) -> str: ...


@dataclass(frozen=True)
class Nearest:
    swatch: Any
    delta_e: float


def nearest_swatches(lab: npt.ArrayLike, swatches: Sequence[HasHex], k: int = 3) -> list[Nearest]:
    """The ``k`` swatches closest to ``lab`` by CIEDE2000, closest first."""
    if not swatches:
        return []
    palette = srgb_to_lab(np.stack([hex_to_srgb(s.hex) for s in swatches]))
    distances = delta_e_2000(np.broadcast_to(np.asarray(lab, np.float64), palette.shape), palette)
    order = np.argsort(distances, kind="stable")[:k]
    return [Nearest(swatches[i], round(float(distances[i]), 2)) for i in order]
