"""consult.colour against published data, and the still tools on the real hand photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consult import colour
from consult.errors import InvalidPalette, InvalidPolygon, InvalidRegion, PayloadTooLarge
from consult.media import still_tools as tools
from consult.recording.palette import parse_import

from .fake_camera import HANDS

SHARMA = Path(__file__).parent / "fixtures" / "ciede2000_sharma2005.csv"
PHOTOS = sorted(p for p in HANDS.iterdir() if p.suffix in (".jpg", ".png"))


def test_ciede2000_matches_sharma_wu_dalal_2005_to_1e4() -> None:
    data = np.loadtxt(SHARMA, delimiter=",", comments="#", skiprows=3)
    assert data.shape == (34, 7)
    lab1, lab2, expected = data[:, 0:3], data[:, 3:6], data[:, 6]
    # Vectorised over all 34 pairs at once, and symmetric.
    assert np.abs(colour.delta_e_2000(lab1, lab2) - expected).max() < 1e-4
    assert np.abs(colour.delta_e_2000(lab2, lab1) - expected).max() < 1e-4


def test_srgb_primaries_land_on_their_published_lab_values() -> None:
    # sRGB red, green, blue and white in CIE Lab (D65), as commonly tabulated.
    expected = {
        (1, 0, 0): (53.24, 80.09, 67.20),
        (0, 1, 0): (87.73, -86.18, 83.18),
        (0, 0, 1): (32.30, 79.19, -107.86),
        (1, 1, 1): (100.0, 0.0, 0.0),
    }
    for rgb, lab in expected.items():
        assert colour.srgb_to_lab(rgb) == pytest.approx(lab, abs=0.01)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_srgb_lab_round_trip(rgb: list[float]) -> None:
    assert colour.lab_to_srgb(colour.srgb_to_lab(rgb)) == pytest.approx(rgb, abs=1e-9)
    assert colour.linear_to_srgb(colour.srgb_to_linear(rgb)) == pytest.approx(rgb, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.tuples(*(st.integers(0, 255),) * 3))
def test_hex_round_trip(rgb: tuple[int, int, int]) -> None:
    value = "#{:02x}{:02x}{:02x}".format(*rgb)
    assert colour.srgb_to_hex(colour.hex_to_srgb(value)) == value
    lab = colour.srgb_to_lab(colour.hex_to_srgb(value))
    assert colour.srgb_to_hex(colour.lab_to_srgb(lab)) == value


def test_hex_parsing_refuses_what_is_not_a_colour() -> None:
    for bad in ("c3161c", "#c3161", "#gggggg", "#c3161c00", "red"):
        with pytest.raises(ValueError):
            colour.hex_to_srgb(bad)


class Named:
    def __init__(self, name: str, hex: str) -> None:
        self.name = name
        self.hex = hex


def test_nearest_swatches_are_ordered_by_delta_e_2000() -> None:
    palette = [Named("red", "#c3161c"), Named("pink", "#f59ab5"), Named("cherry", "#a4101e")]
    nearest = colour.nearest_swatches(colour.srgb_to_lab(colour.hex_to_srgb("#c0171d")), palette)
    assert [n.swatch.name for n in nearest] == ["red", "cherry", "pink"]
    assert nearest[0].delta_e < 1 < nearest[1].delta_e < nearest[2].delta_e


def load(path: Path) -> np.ndarray:
    return tools.load_upright(path)


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_sampling_a_known_patch_returns_its_colour(photo: Path) -> None:
    image = load(photo)
    h, w = image.shape[:2]
    image[h // 2 - 20 : h // 2 + 20, w // 2 - 20 : w // 2 + 20] = (0x1C, 0x16, 0xC3)  # #c3161c
    before = image.copy()
    result = tools.sample(image, tools.Region.around(w // 2, h // 2, 6))
    assert result.hex == "#c3161c"
    assert result.lab == pytest.approx(tuple(colour.srgb_to_lab(colour.hex_to_srgb("#c3161c"))))
    assert np.array_equal(image, before)
    # A region half off the picture is clipped to it; one wholly off it is refused.
    assert tools.sample(image, tools.Region(-5, -5, 10, 10)).region == tools.Region(0, 0, 5, 5)
    with pytest.raises(InvalidRegion):
        tools.sample(image, tools.Region(w + 1, 0, 10, 10))


def cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """The photo as if lit by coloured light: per-channel gains in linear light (B, G, R)."""
    linear = colour.srgb_to_linear(image / 255.0) * np.asarray(gains)
    return np.clip(np.rint(colour.linear_to_srgb(np.clip(linear, 0, 1)) * 255), 0, 255).astype(
        np.uint8
    )


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_white_balance_brings_a_cast_white_card_back_to_neutral(photo: Path) -> None:
    image = load(photo)
    h, w = image.shape[:2]
    card = tools.Region(w // 10, h // 10, max(8, w // 8), max(8, h // 8))
    image[card.y : card.y + card.h, card.x : card.x + card.w] = 220  # a white card, lit
    warm = cast(image, (0.65, 0.9, 1.2))  # a warm lamp: blue down, red up
    lab = colour.srgb_to_lab(card.of(warm).reshape(-1, 3)[:, ::-1] / 255.0).mean(axis=0)
    neutral = np.array([lab[0], 0.0, 0.0])
    assert colour.delta_e_2000(lab, neutral) > 10  # the cast is plain to see
    before = warm.copy()

    corrected, white = tools.white_balance(warm, card)

    assert np.array_equal(warm, before)  # the original is never changed
    fixed = colour.srgb_to_lab(card.of(corrected).reshape(-1, 3)[:, ::-1] / 255.0).mean(axis=0)
    assert colour.delta_e_2000(fixed, np.array([fixed[0], 0.0, 0.0])) <= 2.0
    assert white[0] > white[2]  # the reference was seen red-heavy (linear R, G, B)


def test_grey_world_reduces_a_cast_without_a_reference() -> None:
    image = load(HANDS / "thumb_up_blue_bg_640x521.jpg")
    card = tools.Region(20, 20, 60, 60)
    image[20:80, 20:80] = 200
    shifted = cast(image, (1.25, 1.0, 0.7))  # a cold cast
    corrected, _ = tools.white_balance(shifted, None)

    def off_neutral(img: np.ndarray) -> float:
        lab = colour.srgb_to_lab(card.of(img).reshape(-1, 3)[:, ::-1] / 255.0).mean(axis=0)
        return float(colour.delta_e_2000(lab, np.array([lab[0], 0.0, 0.0])))

    assert off_neutral(corrected) < off_neutral(shifted) / 2


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_undertone_is_stable_under_small_crops(photo: Path) -> None:
    image = load(photo)
    h, w = image.shape[:2]
    whole = tools.undertone(image)
    assert 0 < whole.confidence <= 1 and whole.skin_fraction > 0.01
    for f in (0.02, 0.04, 0.06):
        for top, bottom, left, right in ((f, 0, 0, 0), (0, f, 0, 0), (0, 0, f, 0), (0, 0, 0, f)):
            crop = image[int(h * top) : h - int(h * bottom), int(w * left) : w - int(w * right)]
            result = tools.undertone(crop)
            assert (result.tone, result.hints) == (whole.tone, whole.hints), (f, result)
            assert abs(result.hue - whole.hue) < 3


def test_undertone_tells_warm_from_cool_and_asks_for_correction_under_a_cast() -> None:
    warm = tools.undertone(load(HANDS / "thumbs_up_white_bg_1920x1280.png"))
    assert (warm.tone, warm.hints) == ("warm", ())
    # The victory photo's hand is lit blue-grey: judging it would be judging the light.
    blue = tools.undertone(load(HANDS / "victory_closeup_nails_3000x4000.jpg"))
    assert blue.hints == ("white-balance-first",) and blue.confidence < 0.5
    # The same hand with its skin's hue turned pinker reads cooler.
    image = load(HANDS / "thumbs_up_white_bg_1920x1280.png")
    pink = cast(image, (1.0, 0.82, 1.0))
    assert tools.undertone(pink).hue < warm.hue - 5


def test_undertone_refuses_a_picture_without_skin() -> None:
    from consult.errors import NoSkinFound

    with pytest.raises(NoSkinFound):
        tools.undertone(np.full((200, 300, 3), (200, 120, 20), np.uint8))  # blue paper


def test_swatches_suit_undertones_by_their_hue() -> None:
    assert tools.suits("warm", "#f26b5b") and not tools.suits("cool", "#f26b5b")  # coral
    assert tools.suits("cool", "#7a1f45") and not tools.suits("warm", "#7a1f45")  # mulberry
    assert tools.suits("warm", "#f8f8f6") and tools.suits("cool", "#f8f8f6")  # white: both
    assert all(tools.suits("neutral", h) for h in ("#f26b5b", "#7a1f45", "#1f4fb5"))


def test_try_on_keeps_outside_pixels_and_the_shading_inside() -> None:
    image = load(HANDS / "victory_closeup_nails_3000x4000.jpg")
    h, w = image.shape[:2]
    # Two "nails" on the picture (where exactly does not matter to the maths).
    polygons = [
        [[1100, 700], [1300, 680], [1320, 900], [1120, 920]],
        [[1700, 800], [1880, 790], [1900, 1000], [1710, 1010]],
    ]
    mask = tools.nail_mask(polygons, w, h)
    before = image.copy()
    preview = tools.try_on(image, mask, "#c3161c")

    assert np.array_equal(image, before)
    assert np.array_equal(preview[~mask], image[~mask])  # outside: identical
    inside_before = colour.srgb_to_lab(image[mask][:, ::-1] / 255.0)
    inside_after = colour.srgb_to_lab(preview[mask][:, ::-1] / 255.0)
    correlation = np.corrcoef(inside_before[:, 0], inside_after[:, 0])[0, 1]
    assert correlation > 0.9  # the shading is kept
    target = colour.srgb_to_lab(colour.hex_to_srgb("#c3161c"))
    hue = np.median(colour.hue_angle(inside_after))
    assert abs(hue - colour.hue_angle(target)) < 5  # and the colour is the swatch's
    assert abs(np.median(inside_after[:, 0]) - target[0]) < 3


def test_nail_outlines_must_lie_on_the_still() -> None:
    with pytest.raises(InvalidPolygon):
        tools.nail_mask([[[0, 0], [10, 0], [10, 2000]]], 100, 100)
    with pytest.raises(InvalidPolygon):
        tools.nail_mask([[[0, 0], [10, 0]]], 100, 100)
    with pytest.raises(InvalidPolygon):
        tools.nail_mask([], 100, 100)
    with pytest.raises(InvalidPolygon):
        tools.nail_mask([[[-1, 0], [10, 0], [10, 10]]], 100, 100)
    assert tools.nail_mask([[[0, 0], [100, 0], [100, 100]]], 100, 100).any()


def test_palette_csv_and_json_imports_are_checked_whole() -> None:
    good = (
        b"name,hex,finish,family,brand,code\n"
        b"Ruby,#9b111e,cream,red,Acme,R1\n\nPetal,#F7B6C2,jelly,pink,,\n"
    )
    items = parse_import(good, "text/csv")
    assert [(i.name, i.hex, i.finish) for i in items] == [
        ("Ruby", "#9b111e", "cream"),
        ("Petal", "#F7B6C2", "jelly"),
    ]
    bad = {
        b"name,finish,family\nRuby,cream,red\n": r"lacks the column\(s\): hex",
        b"name,hex,finish,family\nRuby,#9b111e,cream,red\nBad,#12345,cream,red\n": "Line 3",
        b"name,hex,finish,family\nRuby,#9b111e,velvet,red\n": "Line 2",
        b"name,hex,finish,family\nRuby,#9b111e,cream,red,extra\n": "more fields",
        b"name,hex,finish,family\nRuby,#9b111e,cream,red\nRuby,#9b111f,cream,red\n": "repeats",
        b"\xff\xfe\x00n": "UTF-8",
    }
    for body, message in bad.items():
        with pytest.raises(InvalidPalette, match=message):
            parse_import(body, "text/csv")
    with pytest.raises(InvalidPalette, match="JSON"):
        parse_import(b"{", "application/json")
    with pytest.raises(InvalidPalette):
        parse_import(b'{"swatches": [{"name": "x"}]}', "application/json")
    with pytest.raises(InvalidPalette):
        parse_import(b"name,hex\n", "text/plain")
    with pytest.raises(PayloadTooLarge):
        parse_import(b"x" * (1024 * 1024 + 1), "text/csv")
    assert (
        len(
            parse_import(
                b'[{"name": "a", "hex": "#000000", "finish": "matte", "family": "black", '
                b'"id": "x"}]',
                "application/json",
            )
        )
        == 1
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 48),
    st.integers(1, 48),
    st.integers(0, 255),
    st.lists(st.tuples(st.floats(-10, 60), st.floats(-10, 60)), min_size=0, max_size=6),
    st.tuples(st.integers(-60, 60), st.integers(-60, 60), st.integers(-5, 60), st.integers(-5, 60)),
)
def test_the_tools_answer_any_picture_with_a_result_or_a_clear_error(
    width: int,
    height: int,
    seed: int,
    outline: list[tuple[float, float]],
    rect: tuple[int, int, int, int],
) -> None:
    from consult.errors import ConsultError

    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    calls = [
        lambda: tools.sample(image, tools.Region(*rect)),
        lambda: tools.white_balance(image, tools.Region(*rect)),
        lambda: tools.white_balance(image, None),
        lambda: tools.undertone(image),
        lambda: tools.try_on(image, tools.nail_mask([outline], width, height), "#c3161c"),
    ]
    for call in calls:
        try:
            call()
        except ConsultError as exc:
            assert exc.status < 500 and exc.code != "internal"
