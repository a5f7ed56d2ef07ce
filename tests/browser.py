"""Headless Chromium from Debian (/usr/bin/chromium), driven by Playwright, with a fake camera."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright

from .fake_camera import HANDS, write_wav, write_y4m

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CONSULT_ARTIFACTS", Path(__file__).parent / "artifacts"))
FLAGS = [
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    # Screenshots in sRGB: a swatch drawn as #c3161c reads back as #c3161c.
    "--force-color-profile=srgb",
]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def fake_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fake-media")
    return {
        "720p": write_y4m(
            HANDS / "victory_closeup_nails_3000x4000.jpg", folder / "hand-720p.y4m", 1280, 720, 30
        ),
        "1080p": write_y4m(
            HANDS / "thumbs_up_white_bg_1920x1280.png", folder / "hand-1080p.y4m", 1920, 1080, 30
        ),
        "wav": write_wav(folder / "tone.wav"),
    }


Launch = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def launch(fake_media: dict[str, Path]) -> AsyncIterator[Launch]:
    """Start Chromium with the fake camera ``camera`` ("720p", "1080p"); camera access is
    granted unless ``deny_camera``. ``executable``: another way to start Chromium (e.g.
    ``tests/turn.py``'s ``BlockedNetwork.wrapper``); ``args``: more flags."""
    async with async_playwright() as pw:

        async def start(
            camera: str = "720p",
            deny_camera: bool = False,
            executable: str = CHROMIUM,
            args: Sequence[str] = (),
        ) -> Browser:
            flags = [
                *FLAGS,
                f"--use-file-for-fake-video-capture={fake_media[camera]}",
                f"--use-file-for-fake-audio-capture={fake_media['wav']}",
                "--deny-permission-prompts" if deny_camera else "--use-fake-ui-for-media-stream",
                *args,
            ]
            return await pw.chromium.launch(executable_path=executable, args=flags)

        yield start


def artifact(name: str) -> Path:
    """Where a test keeps ``name`` for people to look at (not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


async def screenshot(page: Page, name: str) -> Path:
    path = artifact(f"{name}.png")
    await page.screenshot(path=str(path))
    return path


async def visible_detail(page: Page, testid: str) -> float:
    """How much picture an element shows on screen: the spread of its screenshot's pixels
    (a black or uniform video is near 0)."""
    import cv2

    png = await page.get_by_test_id(testid).screenshot()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.std())


async def video_size(page: Page, testid: str) -> tuple[int, int]:
    size: list[int] = await page.evaluate(
        "(id) => { const v = document.querySelector(`[data-testid=${id}]`);"
        " return [v.videoWidth, v.videoHeight]; }",
        testid,
    )
    return size[0], size[1]


__all__ = ["LAPTOP", "PHONE", "Launch", "artifact", "fake_media", "launch", "screenshot"]
