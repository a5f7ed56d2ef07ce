"""The quality gate on real hand photos and their spoiled copies: thresholds hold."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from consult.media.quality import assess, frame_score

from .fake_camera import HANDS, load_photo

PHOTOS = sorted(p.name for p in HANDS.glob("*.jp*g")) + sorted(p.name for p in HANDS.glob("*.png"))


@pytest.fixture(scope="module", params=PHOTOS)
def photo(request: pytest.FixtureRequest) -> np.ndarray:
    return load_photo(HANDS / request.param)


def test_the_originals_pass(photo: np.ndarray) -> None:
    result = assess(photo)
    assert result.flags == [], result
    assert result.skin > 0.03  # a hand is found, light or brown skin


def test_blur_is_flagged(photo: np.ndarray) -> None:
    # A 2 px blur at the working size (640 px), whatever the photo's own size.
    sigma = 2 * max(photo.shape[:2]) / 640
    assert "blur" in assess(cv2.GaussianBlur(photo, (0, 0), sigma)).flags


def test_too_dark_is_flagged(photo: np.ndarray) -> None:
    dark = (photo * 0.3).astype(np.uint8)
    assert assess(dark).flags == ["underexposed"] or "underexposed" in assess(dark).flags


def test_too_bright_is_flagged(photo: np.ndarray) -> None:
    bright = np.clip(photo.astype(np.float32) * 1.9, 0, 255).astype(np.uint8)
    assert "overexposed" in assess(bright).flags


@pytest.mark.parametrize(
    "name", ["thumbs_up_white_bg_1920x1280.png", "thumb_up_blue_bg_640x521.jpg",
             "thumbs_down_brown_skin_427x640.jpg", "both_hands_back_nails_720x382.jpg"],
)  # fmt: skip
def test_specular_spots_on_the_hand_are_glare(name: str) -> None:
    image = load_photo(HANDS / name)
    scale = max(image.shape[:2]) / 640
    from consult.media.quality import skin_mask, working_copy

    skin = skin_mask(working_copy(image))
    ys, xs = np.nonzero(skin)
    rng = np.random.default_rng(1)
    for i in rng.choice(len(ys), 6, replace=False):
        centre = (int(xs[i] * scale), int(ys[i] * scale))
        axes = (int(12 * scale), int(6 * scale))
        cv2.ellipse(image, centre, axes, 30, 0, 360, (250, 250, 250), -1)
    result = assess(image)
    assert "glare" in result.flags, result


def test_hints_follow_flags() -> None:
    dark = (load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg") * 0.3).astype(np.uint8)
    blurred = cv2.GaussianBlur(dark, (0, 0), 4)
    result = assess(blurred)
    assert result.flags == ["blur", "underexposed"]
    assert result.hints == ["hold-still", "more-light"]


def test_no_hand_means_no_glare_and_whole_picture_exposure() -> None:
    grey = np.full((480, 640, 3), 128, np.uint8)
    result = assess(grey)
    assert result.skin < 0.03 and result.glare == 0
    assert result.flags == ["blur"]  # nothing in focus


def test_frame_score_prefers_the_sharp_frame_with_a_hand() -> None:
    image = cv2.resize(load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg"), (320, 240))
    sharp_grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(image, (0, 0), 2)
    blurred_grey = cv2.cvtColor(blurred, cv2.COLOR_BGR2GRAY)
    assert frame_score(sharp_grey, image)[0] > 2 * frame_score(blurred_grey, blurred)[0]
    no_hand = np.full_like(image, (200, 120, 40))
    cv2.putText(no_hand, "sharp text, no hand", (10, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
    assert frame_score(cv2.cvtColor(no_hand, cv2.COLOR_BGR2GRAY), no_hand)[1] < 0.03
