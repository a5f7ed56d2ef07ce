"""Firefox ESR as the customer, with a Chromium stylist: another browser engine in a real call.

One server, one Firefox and one Chromium for the module: starting them is most of the cost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright, expect

from consult.app import create_app
from consult.appkeys import HUB
from consult.media.peer import ServerPeer

from .browser import (
    CHROMIUM,
    LAPTOP,
    PHONE,
    PLAY_THROUGH,
    WATCH_SHOWN,
    artifact,
    chromium_args,
    local,
    video_size,
)
from .conftest import STAFF_KEY, create_consultation, make_settings
from .fake_camera import HANDS
from .firefox import Firefox, FirefoxPage

pytestmark = [pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]

STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}


@dataclass
class Call:
    server: TestServer
    http: aiohttp.ClientSession
    consultation: dict[str, Any]
    customer: FirefoxPage  # Firefox ESR
    stylist: Page  # Chromium

    def peer(self, role: str) -> ServerPeer:
        call = self.server.app[HUB].call(self.consultation["id"])
        assert call is not None
        peer = call.forwarder.peer(role)  # type: ignore[arg-type]
        assert peer is not None
        return peer


async def joined(page: FirefoxPage) -> None:
    # The customer's link opens the conversation; the call is one tap away.
    await page.wait_for("() => !document.querySelector('[data-testid=conversation]').hidden")
    await page.click("join-call")
    # The customer agrees to what is kept (stored once the box is disabled).
    await page.wait_for("() => Boolean(document.querySelector('[data-testid=consent]'))")
    await page.click("consent")
    await page.wait_for("() => document.querySelector('[data-testid=consent]').disabled")
    await page.wait_for("() => !document.querySelector('[data-testid=join]').disabled")
    await page.click("join")


# Whether a video element presents ``n`` new frames (requestVideoFrameCallback, in both
# engines) within 15 s: a picture that moves, not a frozen or black element. Counted, not
# timed: the machine may be slow.
FRAMES = """([id, n]) => new Promise((resolve) => {
  const video = document.querySelector(`[data-testid=${id}]`);
  let frames = 0;
  const count = () => {
    frames += 1;
    if (frames >= n) resolve(frames); else video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  setTimeout(() => resolve(frames), 15000);
})"""


async def centre_brightness(page: Page, testid: str) -> float:
    """The mean grey level of the middle of an element on screen (0: black)."""
    png = await page.get_by_test_id(testid).screenshot()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    h, w = image.shape
    return float(image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def call(
    tmp_path_factory: pytest.TempPathFactory, fake_media: dict[str, Path]
) -> AsyncIterator[Call]:
    """The Firefox customer (phone-sized) and the Chromium stylist, both joined."""
    server = TestServer(create_app(make_settings(tmp_path_factory.mktemp("firefox"))))
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(base_url=str(server.make_url("")), cookie_jar=jar) as http,
        async_playwright() as pw,
    ):
        consultation = await create_consultation(http, STAFF)
        firefox, chromium = await asyncio.gather(
            Firefox.launch(),
            pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(fake_media)),
        )
        try:
            customer = await firefox.new_page(local(server, consultation["customer_link"]), PHONE)
            await joined(customer)
            context = await chromium.new_context(viewport=LAPTOP)
            stylist = await context.new_page()
            stylist_errors: list[str] = []
            stylist.on("pageerror", lambda e: stylist_errors.append(str(e)))
            await stylist.goto(local(server, consultation["stylist_link"]))
            await expect(stylist.get_by_test_id("join")).to_be_enabled(timeout=15_000)
            await stylist.get_by_test_id("join").click()
            yield Call(server, http, consultation, customer, stylist)
            errors = {"customer_firefox": customer.errors, "stylist_chromium": stylist_errors}
            artifact("firefox-console.json").write_text(json.dumps(errors))
        finally:
            await asyncio.gather(firefox.close(), chromium.close())
            await server.close()


async def test_a_firefox_customer_and_a_chromium_stylist_see_and_hear_each_other(
    call: Call,
) -> None:
    customer, stylist = call.customer, call.stylist
    live = "() => document.body.dataset.callState === 'live'"
    await customer.wait_for(live)
    await stylist.wait_for_function(live, timeout=15_000)
    await expect(stylist.get_by_test_id("call-status")).to_be_hidden()
    await customer.wait_for("() => document.querySelector('[data-testid=call-status]').hidden")
    await expect(stylist.get_by_test_id("customer-name")).to_have_text("Jane Doe")

    # Firefox shows the stylist's camera (the fake hand, 1280x720) at full size...
    await customer.wait_for(
        "() => document.querySelector('[data-testid=remote-video]').videoWidth === 1280"
    )
    assert await customer.visible_detail("remote-video") > 20
    assert await customer.evaluate(FRAMES, ["remote-video", 10]) == 10
    # ...and its own camera in the self view: Firefox's fake camera is one flat colour that
    # changes over time, so it is checked for moving, not for detail.
    await customer.wait_for(
        "() => document.querySelector('[data-testid=local-video]').videoWidth > 0"
    )
    assert await customer.evaluate(FRAMES, ["local-video", 10]) == 10
    # The stylist sees that camera: frames keep coming, and they are not black.
    await stylist.wait_for_function(
        "() => document.querySelector('[data-testid=remote-video]').videoWidth > 0",
        timeout=15_000,
    )
    assert await stylist.evaluate(FRAMES, ["remote-video", 10]) == 10
    sent = await call.customer.evaluate(
        "() => { const v = document.querySelector('[data-testid=local-video]');"
        " return [v.videoWidth, v.videoHeight]; }"
    )
    assert await video_size(stylist, "remote-video") == tuple(sent)
    assert await centre_brightness(stylist, "remote-video") > 20
    # Audio both ways: each side receives an audio track that is live.
    for page in (customer, stylist):
        assert await page.evaluate(
            "() => document.querySelector('[data-testid=remote-video]').srcObject"
            ".getAudioTracks().some((t) => t.readyState === 'live')"
        )
    artifact("firefox-customer-call-phone.png").write_bytes(await customer.screenshot())
    await stylist.screenshot(path=str(artifact("firefox-stylist-console-laptop.png")))
    assert customer.errors == []


async def test_firefox_offers_no_h264_and_the_call_forwards_vp8(call: Call) -> None:
    customer = call.peer("customer")
    sent = customer.sent_codec("video")
    assert sent is not None and sent.name == "VP8"
    inlet = customer.inlets["video"]
    assert inlet.reception is not None
    assert "H264" not in {c.name for c in inlet.reception.codecs}
    # Chromium's stylist is steered to VP8 too: packets go through without re-encoding.
    for role in ("customer", "stylist"):
        relay = call.peer(role).relays["video"]  # type: ignore[index]
        assert relay.forwarding


async def test_a_capture_in_firefox_takes_the_full_photo_through_the_devices_camera(
    call: Call,
) -> None:
    customer, stylist = call.customer, call.stylist
    # Firefox has no ImageCapture: no video frame is passed off as a photo; the customer is
    # offered the device's own camera, whose photo is kept byte for byte.
    assert await customer.evaluate("() => !('ImageCapture' in window)")
    size = await customer.evaluate(
        "() => { const v = document.querySelector('[data-testid=local-video]');"
        " return [v.videoWidth, v.videoHeight]; }"
    )
    await stylist.keyboard.press("c")
    await customer.wait_for("() => !document.querySelector('[data-testid=native-prompt]').hidden")
    # Meanwhile the server's best frame of the video stands for the capture.
    await expect(stylist.get_by_test_id("still")).to_have_count(1, timeout=20_000)
    artifact("firefox-native-prompt-phone.png").write_bytes(await customer.screenshot())
    original = HANDS / "victory_closeup_nails_3000x4000.jpg"  # a real phone's photo
    await customer.evaluate(WATCH_SHOWN, "capture-verdict")
    await customer.set_files("native-photo", original)
    await expect(stylist.get_by_test_id("still")).to_have_count(2, timeout=30_000)
    await customer.wait_for("() => document.querySelector('[data-testid=native-prompt]').hidden")
    async with call.http.get(f"/api/consultations/{call.consultation['id']}", headers=STAFF) as r:
        stills = {s["source"]: s for s in (await r.json())["stills"]}
    native, video = stills["native"], stills["video"]
    assert (native["width"], native["height"]) == (3000, 4000)
    assert [native["video_width"], native["video_height"]] == size
    assert [video["width"], video["height"]] == size
    async with call.http.get(native["url"], headers=STAFF) as r:
        assert await r.read() == original.read_bytes()
    async with call.http.get(video["url"], headers=STAFF) as r:
        frame = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
    assert float(frame.mean()) > 20  # a frame of the camera, not a black canvas
    # Shown for eight seconds: counted by the page, not polled.
    await customer.wait_for("() => window.__shown['capture-verdict'] >= 1")
    artifact("firefox-customer-verdict-phone.png").write_bytes(await customer.screenshot())
    assert customer.errors == []


async def test_a_photo_chosen_in_a_firefox_file_input_reaches_the_stylist(call: Call) -> None:
    # The way a test picks the customer's photo (BiDi input.setFiles), on an input that is
    # hidden behind its label as the page has it.
    await call.customer.set_files("chat-photo-input", HANDS / "thumb_up_blue_bg_640x521.jpg")
    photo = call.stylist.get_by_test_id("chat-photo")
    await expect(photo).to_have_count(1, timeout=15_000)
    await photo.click()
    await call.stylist.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 640"
    )
    await call.stylist.get_by_test_id("viewer-close").click()
    assert call.customer.errors == []


async def test_a_voice_message_recorded_in_firefox_plays_in_chromium_and_in_firefox(
    call: Call,
) -> None:
    customer, stylist = call.customer, call.stylist
    await customer.click("chat-toggle")
    await customer.click("chat-voice-record")
    await customer.wait_for(
        "() => document.querySelector('[data-testid=voice-status]').textContent.includes('0:0')"
    )
    await asyncio.sleep(3)
    await customer.click("chat-voice-record")
    await customer.wait_for(
        "() => document.querySelector('[data-testid=voice-status]').dataset.durationMs"
    )
    recorded = (
        int(
            await customer.evaluate(
                "() => document.querySelector('[data-testid=voice-status]').dataset.durationMs"
            )
        )
        / 1000
    )
    voice = stylist.get_by_test_id("chat-voice")
    await expect(voice).to_have_count(1, timeout=15_000)
    async with call.http.get(f"/api/consultations/{call.consultation['id']}", headers=STAFF) as r:
        messages = (await r.json())["messages"]
    attachment = next(m["attachment"] for m in messages if m.get("attachment"))
    # Firefox ESR records WebM/Opus too (its first choice of the page's list), with its own
    # muxer: kept as it came, played by the other engine.
    assert attachment["media_type"] == "audio/webm" and attachment["name"].endswith(".webm")
    # Firefox's recorder events come late on a loaded machine (its start-to-stop time ran 11 %
    # over the sound once): the sound's own length, measured by the server, is the reference.
    assert recorded * 0.75 <= attachment["duration"] <= recorded * 1.1
    # Played through in Chromium, for the recording's length (within 10 %), and again.
    for _ in range(2):
        played = await stylist.evaluate(PLAY_THROUGH, ["[data-testid=chat-voice]", 0])
        assert played == pytest.approx(attachment["duration"], rel=0.1)
    # And Firefox reads its own copy, the server's message, without an error. (Played through
    # from this driver, it outlasted the driver's protocol timeout: not checked further.)
    await customer.wait_for(
        "() => { const a = document.querySelector('[data-testid=chat-voice]');"
        " return a && a.readyState >= 1 && !a.error; }"
    )
    assert call.customer.errors == []
