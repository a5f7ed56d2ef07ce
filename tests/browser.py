"""Headless Chromium from Debian (/usr/bin/chromium), driven by Playwright, with a fake camera."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from .fake_camera import HANDS, write_wav, write_y4m

# Patience, not a measure: on a loaded 2-core machine a page can take more than Playwright's
# default 5 s to show what it will show (the suite measures nothing with these).
expect.set_options(timeout=15_000)

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
    # Without the camera permission Chromium hides its addresses behind mDNS names, which
    # nothing resolves on a loopback-only network: a customer who refused the camera would
    # never connect here (on a real network the server learns the address from the checks).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
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


def chromium_args(
    fake_media: dict[str, Path], camera: str = "720p", deny_camera: bool = False
) -> list[str]:
    """Chromium's flags with the fake camera ``camera`` ("720p", "1080p"); camera access is
    granted unless ``deny_camera``."""
    return [
        *FLAGS,
        f"--use-file-for-fake-video-capture={fake_media[camera]}",
        f"--use-file-for-fake-audio-capture={fake_media['wav']}",
        "--deny-permission-prompts" if deny_camera else "--use-fake-ui-for-media-stream",
    ]


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
            flags = [*chromium_args(fake_media, camera, deny_camera), *args]
            return await pw.chromium.launch(executable_path=executable, args=flags)

        yield start


# Installed before the page's own script: when Join is pressed, and when the remote video
# first shows a frame.
METRICS = """
window.__metrics = {};
document.addEventListener("click", (e) => {
  if (e.target.closest?.("[data-testid=join]")) window.__metrics.join = performance.now();
}, true);
document.addEventListener("DOMContentLoaded", () => {
  const v = document.querySelector("[data-testid=remote-video]");
  if (!v) return;  // not a call page
  const onFrame = (now) => {
    if (window.__metrics.join && v.videoWidth > 0 && !window.__metrics.firstFrame) {
      window.__metrics.firstFrame = now;
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
});
"""


def local(server: Any, link: str) -> str:
    """``link`` (built on the configured public URL) on the test server."""
    return str(server.make_url(urlsplit(link).path))


#: A phone as Chromium emulates one: touch, a mobile viewport, three device pixels per CSS one.
PHONE_EMULATION: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
#: A phone's camera (rear and front, torch, zoom, focus, large photos): see the file.
PHONE_CAMERA = Path(__file__).parent / "phone_shim.js"


async def open_page(
    browser: Any,
    url: str,
    viewport: dict[str, int] | None = None,
    *,
    scripts: tuple[Path, ...] = (),
    **kw: Any,
) -> Page:
    """A page in a context of its own; ``scripts`` run before the page's own."""
    context = await browser.new_context(**({"viewport": viewport} if viewport else {}), **kw)
    page = await context.new_page()
    await page.add_init_script(METRICS)
    for script in scripts:
        await page.add_init_script(path=str(script))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(url)
    return page


async def open_lobby(page: Page) -> None:
    """The customer's link opens the conversation: one tap to the lobby (the stylist's link
    opens the lobby itself)."""
    if "/c/" in page.url:
        await page.get_by_test_id("join-call").click()
        await agree(page)


async def agree(page: Page) -> None:
    """The customer agrees to what the salon keeps (the lobby asks before the call)."""
    await page.get_by_test_id("consent").check()
    # Stored: the box stays checked and can no longer be changed.
    await expect(page.get_by_test_id("consent")).to_be_disabled()


async def ready_to_join(page: Page) -> None:
    await open_lobby(page)
    await expect(page.get_by_test_id("join")).to_be_enabled(timeout=15_000)


def artifact(name: str) -> Path:
    """Where a test keeps ``name`` for people to look at (not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


async def screenshot(page: Page, name: str) -> Path:
    path = artifact(f"{name}.png")
    await page.screenshot(path=str(path))
    return path


# A state a page shows for a few seconds only (the photo notice, the capture's verdict) can come
# and go while a loaded machine runs the test's other steps, and a polling ``expect`` then
# misses it: the page itself counts each time the element is shown (``watch_shown`` before
# what shows it, ``shown`` after; shown already when watched counts once).
WATCH_SHOWN = """(testid) => {
  const target = document.querySelector(`[data-testid="${testid}"]`);
  const shown = (window.__shown ??= {});
  shown[testid] = target.hidden ? 0 : 1;
  let hidden = target.hidden;
  new MutationObserver(() => {
    if (hidden && !target.hidden) shown[testid] += 1;
    hidden = target.hidden;
  }).observe(target, { attributes: true, attributeFilter: ["hidden"] });
}"""


async def watch_shown(page: Page, testid: str) -> None:
    await page.evaluate(WATCH_SHOWN, testid)


async def shown(page: Page, testid: str, times: int = 1) -> None:
    """Wait until the element watched by ``watch_shown`` has been shown ``times`` times."""
    await page.wait_for_function(
        "([testid, times]) => window.__shown[testid] >= times", arg=[testid, times],
        timeout=15_000,
    )  # fmt: skip


async def visible_detail(page: Page, testid: str) -> float:
    """How much picture an element shows on screen: the spread of its screenshot's pixels
    (a black or uniform video is near 0)."""
    return picture_spread(await page.get_by_test_id(testid).screenshot())


def picture_spread(png: bytes) -> float:
    """The standard deviation of a PNG's grey levels."""
    import cv2

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(image.std())


async def video_size(page: Page, testid: str) -> tuple[int, int]:
    size: list[int] = await page.evaluate(
        "(id) => { const v = document.querySelector(`[data-testid=${id}]`);"
        " return [v.videoWidth, v.videoHeight]; }",
        testid,
    )
    return size[0], size[1]


__all__ = [
    "LAPTOP",
    "PHONE",
    "PHONE_CAMERA",
    "PHONE_EMULATION",
    "Launch",
    "agree",
    "artifact",
    "chromium_args",
    "fake_media",
    "launch",
    "local",
    "open_lobby",
    "open_page",
    "picture_spread",
    "ready_to_join",
    "screenshot",
]


#: Plays the ``index``th element matching ``selector`` to its end and returns where it ended: its
#: length as played (a recorder's WebM says nothing before it is played). An error on the way
#: is the page's to recover from (web/js/attachments.js); one it does not is in the timeout's
#: message.
PLAY_THROUGH = """([selector, index]) => new Promise((resolve, reject) => {
  const media = document.querySelectorAll(selector)[index];
  // The furthest it played, and from where it started.
  let furthest = 0;
  media.addEventListener("timeupdate", () => (furthest = Math.max(furthest, media.currentTime)));
  const end = () => resolve(Math.max(furthest, media.currentTime));
  media.addEventListener("ended", end, { once: true });
  // As a click on its play button: a page that loads it again aborts this request itself.
  media.play().catch(() => {});
  const state = () => JSON.stringify({ t: media.currentTime, furthest, paused: media.paused,
    ready: media.readyState, error: media.error?.message });
  setTimeout(() => reject(new Error(`not played through in 60 s: ${state()}`)), 60000);
})"""
