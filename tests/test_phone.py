"""The customer on a phone: Chromium with mobile emulation (touch, 390x844, three device pixels
per CSS pixel) and a stylist on a laptop, through the real server.

What no test browser has (a rear and a front camera, torch, zoom, focus, photos larger than the
video) comes from the camera shim in ``tests/phone_shim.js``, over Chromium's real fake camera
(a clip of a real hand photo): the tests that use it say so.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from .browser import (
    LAPTOP,
    PHONE_CAMERA,
    PHONE_EMULATION,
    Launch,
    artifact,
    local,
    open_lobby,
    open_page,
    ready_to_join,
    screenshot,
    shown,
    video_size,
    visible_detail,
    watch_shown,
)

pytestmark = pytest.mark.timeout(180)

X = "\u00d7"  # the multiplication sign the pages write sizes with


# The countdown lasts half a second in the suite (``capture_countdown``): under load a polling
# ``expect`` can miss it, so the page itself counts each time it is shown, and where.
WATCH_COUNTDOWN = """() => {
  const counter = document.getElementById("capture-countdown");
  const frame = document.getElementById("capture-frame");
  window.__countdowns = [];
  new MutationObserver(() => {
    if (!counter.hidden && window.__countdowns.length % 2 === 0) {
      window.__countdowns.push({ shown: counter.textContent, framed: !frame.hidden });
    } else if (counter.hidden && window.__countdowns.length % 2 === 1) {
      window.__countdowns.push({ hidden: true });
    }
  }).observe(counter, { attributes: true, attributeFilter: ["hidden"] });
}"""


async def countdowns_shown(page: Page, count: int) -> list[dict[str, Any]]:
    """Wait until the countdown has been shown ``count`` times; what each showed."""
    await page.wait_for_function(
        f"() => window.__countdowns.filter(c => c.shown).length >= {count}", timeout=15_000
    )
    seen: list[dict[str, Any]] = await page.evaluate("window.__countdowns")
    return [c for c in seen if "shown" in c]


async def phone_and_laptop(
    launch: Launch, server: Any, consultation: dict[str, Any]
) -> tuple[Any, Any, Page, Page]:
    """A phone customer (with the camera shim) and a laptop stylist, both joined."""
    phone_browser = await launch("720p")
    laptop_browser = await launch("720p")
    customer = await open_page(
        phone_browser, local(server, consultation["customer_link"]),
        scripts=(PHONE_CAMERA,), **PHONE_EMULATION,
    )  # fmt: skip
    stylist = await open_page(laptop_browser, local(server, consultation["stylist_link"]), LAPTOP)
    await ready_to_join(customer)
    await customer.get_by_test_id("join").click()
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    return phone_browser, laptop_browser, customer, stylist


async def shim(page: Page) -> dict[str, Any]:
    log: dict[str, Any] = await page.evaluate("() => window.__shim")
    return log


async def mirrored(page: Page, testid: str) -> bool:
    result: bool = await page.evaluate(
        "(id) => document.querySelector(`[data-testid=${id}]`).classList.contains('mirrored')",
        testid,
    )
    return result


async def wait_for_remote_width(page: Page, width: int) -> float:
    """Wait until the remote video shows frames ``width`` wide; the wall clock then (ms)."""
    at: float = await page.evaluate(
        """(width) => new Promise((resolve) => {
             const v = document.querySelector("[data-testid=remote-video]");
             const check = () => v.videoWidth === width ? resolve(Date.now())
                                                        : v.requestVideoFrameCallback(check);
             check();
           })""",
        width,
    )
    return at


async def test_the_phone_starts_on_the_rear_camera_and_flips_during_the_call(
    launch: Launch, server: Any, consultation: dict[str, Any]
) -> None:
    """With the camera shim: the rear camera is 1280x720, the front one 640x360."""
    phone, laptop, customer, stylist = await phone_and_laptop(launch, server, consultation)
    first = (await shim(customer))["gum"][0]["video"]
    assert first["facingMode"] == {"ideal": "environment"}
    # The rear camera is shown as it is; only a front camera is a mirror.
    assert not await mirrored(customer, "preview-video")
    await expect(stylist.get_by_test_id("quality-video")).to_contain_text(
        f"1280{X}720", timeout=20_000
    )
    assert not await mirrored(customer, "local-video")

    # Flip in the call: the new camera's track replaces the old one (no new offer), and the
    # stylist sees it. Measured from the tap to the first frame of the new size on the laptop.
    await customer.evaluate(
        """() => { window.__offers = 0; const send = WebSocket.prototype.send;
                   WebSocket.prototype.send = function (data) {
                     if (JSON.parse(data).type === "offer") window.__offers += 1;
                     return send.call(this, data); }; }"""
    )
    flips: list[dict[str, int]] = []
    for width in (640, 1280):
        tapped = await customer.evaluate(
            "() => { document.querySelector('[data-testid=flip-camera]').click();"
            " return Date.now(); }"
        )
        seen = await wait_for_remote_width(stylist, width)
        opened = (await shim(customer))["gumOpened"][-1]
        # The camera's own start, then the new track through the server to the stylist.
        flips.append({"total": round(seen - tapped), "camera_open": round(opened - tapped),
                      "to_stylist": round(seen - opened)})  # fmt: skip
        assert await mirrored(customer, "local-video") == (width == 640)
    assert await visible_detail(stylist, "remote-video") > 20
    gum = (await shim(customer))["gum"][1:]
    assert [g["video"]["facingMode"] for g in gum] == [{"ideal": "user"}, {"ideal": "environment"}]
    assert all(g["audio"] is False for g in gum), "the microphone was opened again"
    assert await customer.evaluate("() => window.__offers") == 0, "a flip renegotiated"
    print(json.dumps({"flip_to_stylist_ms": flips}))
    artifact("flip.json").write_text(json.dumps({"flip_to_stylist_ms": flips}))

    # The pickers stay reachable during the call, in a settings sheet.
    await customer.get_by_test_id("settings-open").click()
    await expect(customer.get_by_test_id("camera-select")).to_be_visible()
    await screenshot(customer, "phone-settings-sheet")
    await customer.get_by_test_id("settings-close").click()
    await expect(customer.get_by_test_id("camera-select")).to_be_hidden()

    # A camera that goes away mid-call: a clear message and a way back, no reload.
    await customer.evaluate(
        "() => document.querySelector('[data-testid=local-video]').srcObject"
        ".getVideoTracks()[0].dispatchEvent(new Event('ended'))"
    )
    await expect(customer.get_by_test_id("camera-lost")).to_be_visible()
    await screenshot(customer, "phone-camera-lost")
    await customer.get_by_test_id("camera-restart").click()
    await expect(customer.get_by_test_id("camera-lost")).to_be_hidden()
    await expect(stylist.get_by_test_id("quality-video")).to_contain_text(
        f"1280{X}720", timeout=20_000
    )
    assert customer.errors == []  # type: ignore[attr-defined]
    await phone.close()
    await laptop.close()


async def test_a_capture_on_a_phone_with_light_zoom_focus_countdown_verdict_and_retake(
    launch: Launch, server: Any, consultation: dict[str, Any], http: Any, staff: dict[str, str]
) -> None:
    """With the camera shim: torch, zoom, tap-to-focus and 4032x3024 photos."""
    phone, laptop, customer, stylist = await phone_and_laptop(launch, server, consultation)
    await expect(customer.get_by_test_id("torch")).to_be_visible(timeout=15_000)
    await expect(customer.get_by_test_id("zoom")).to_be_visible()

    # The customer's own upload reaches the console, and the customer sees it in a word.
    await expect(stylist.get_by_test_id("quality-upload")).to_contain_text(
        f"1280{X}720", timeout=20_000
    )
    await expect(customer.get_by_test_id("upload-quality")).to_be_visible()

    # The stylist asks for light: a one-tap prompt turns on the torch.
    await stylist.get_by_test_id("ask-light").click()
    await expect(customer.get_by_test_id("ask-prompt")).to_be_visible()
    await screenshot(customer, "phone-ask-light")
    await customer.get_by_test_id("ask-act").click()
    await expect(customer.get_by_test_id("torch")).to_have_attribute("aria-pressed", "true")
    # ... and a closer view: the zoom goes up.
    await stylist.get_by_test_id("ask-closer").click()
    await customer.get_by_test_id("ask-act").click()
    applied = (await shim(customer))["applied"]
    assert {"advanced": [{"torch": True}]} in applied
    assert any(step.get("zoom", 1) > 1 for a in applied for step in a.get("advanced", []))
    # Tap to focus on the self view: a point of interest where the camera takes one.
    await customer.get_by_test_id("local-video").tap()
    await customer.wait_for_function(
        "() => window.__shim.applied.some(a => (a.advanced || []).some(s => s.pointsOfInterest))"
    )

    # Capture: the countdown over the self view, then the largest photo, with the light.
    await customer.evaluate(WATCH_COUNTDOWN)
    await watch_shown(customer, "capture-verdict")
    await stylist.get_by_test_id("capture").click()
    first = await countdowns_shown(customer, 1)
    assert first == [{"shown": "1", "framed": True}]  # 0.5 s: one step, inside the frame
    strip = stylist.get_by_test_id("still")
    await expect(strip).to_have_count(2, timeout=30_000)
    photos = (await shim(customer))["photos"]
    assert photos == [{"imageWidth": 4032, "imageHeight": 3024, "fillLightMode": "flash"}]
    camera = stylist.locator("[data-testid=still][data-source=camera]")
    await expect(camera.get_by_test_id("still-size")).to_have_text(
        f"4032{X}3024 · video 1280{X}720"
    )
    # The quality gate's verdict reaches the customer, in words (for eight seconds).
    verdict = customer.get_by_test_id("capture-verdict")
    await shown(customer, "capture-verdict")
    assert await verdict.get_attribute("data-verdict") in ("good", "retake")
    await screenshot(customer, "phone-capture-verdict")
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        stills = {s["source"]: s for s in (await r.json())["stills"]}
    assert (stills["camera"]["width"], stills["camera"]["height"]) == (4032, 3024)
    assert (stills["camera"]["video_width"], stills["camera"]["video_height"]) == (1280, 720)
    assert (stills["video"]["width"], stills["video"]["height"]) == (1280, 720)

    # The viewer shows both sizes.
    await camera.click()
    await expect(stylist.get_by_test_id("viewer-details")).to_contain_text(f"1280 {X} 720")
    await stylist.get_by_test_id("viewer-close").click()

    # A retake: one click repeats the cue on the customer's screen, and counts down again.
    await stylist.get_by_test_id("retake").click()
    assert len(await countdowns_shown(customer, 2)) == 2
    await expect(strip).to_have_count(4, timeout=30_000)
    # The stylist cannot skip the countdown (issue 17): the customer's screen counts down
    # while no still of this capture is in the strip yet, and the stills come after it.
    await expect(stylist.get_by_test_id("use-countdown")).to_have_count(0)
    started = time.monotonic()
    await stylist.get_by_test_id("capture").click()
    assert len(await countdowns_shown(customer, 3)) == 3
    await expect(strip).to_have_count(4)
    await expect(strip).to_have_count(6, timeout=30_000)
    elapsed = round(time.monotonic() - started, 2)
    print(json.dumps({"capture_with_countdown_to_strip_s": elapsed}))
    assert customer.errors == [] and stylist.errors == []  # type: ignore[attr-defined]
    await phone.close()
    await laptop.close()


async def test_a_refused_camera_still_joins_to_talk_and_write(
    launch: Launch, server: Any, consultation: dict[str, Any]
) -> None:
    denied = await launch(deny_camera=True)
    laptop = await launch("720p")
    customer = await open_page(
        denied, local(server, consultation["customer_link"]), **PHONE_EMULATION
    )
    stylist = await open_page(laptop, local(server, consultation["stylist_link"]), LAPTOP)
    await open_lobby(customer)
    await expect(customer.get_by_test_id("join-without-camera")).to_be_visible(timeout=15_000)
    await expect(customer.get_by_test_id("lobby-record-link")).to_be_visible()
    await customer.get_by_test_id("join-without-camera").click()
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    await expect(customer.get_by_test_id("call")).to_be_visible()
    await customer.wait_for_function("() => document.body.dataset.callState === 'live'")
    # The customer sees the stylist, and they write.
    await customer.wait_for_function(
        "() => document.querySelector('[data-testid=remote-video]').videoWidth > 0", timeout=20_000
    )
    assert await visible_detail(customer, "remote-video") > 20
    await stylist.get_by_test_id("chat-input").fill("I can't see you, but we can talk.")
    await stylist.get_by_test_id("chat-send").click()
    await customer.get_by_test_id("chat-toggle").click()
    await expect(customer.get_by_test_id("chat-message")).to_contain_text("we can talk")
    await screenshot(customer, "phone-joined-without-camera")
    await denied.close()
    await laptop.close()


SIZES = [(360, 640), (430, 932), (640, 360), (932, 430)]


async def fits(page: Page) -> None:
    """Nothing wider than the screen, and each listed control fully on it."""
    overflow = await page.evaluate(
        "() => document.scrollingElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"{overflow}px wider than the screen"


async def test_the_call_the_viewer_and_the_record_fit_a_phone(
    launch: Launch, server: Any, consultation: dict[str, Any]
) -> None:
    phone, laptop, customer, stylist = await phone_and_laptop(launch, server, consultation)
    await expect(customer.get_by_test_id("remote-video")).to_be_visible()
    # The customer's video has reached the server (else Capture is refused: no-customer).
    await expect(stylist.get_by_test_id("quality-video")).to_contain_text(
        f"1280{X}720", timeout=20_000
    )
    await watch_shown(customer, "photo-notice")
    await stylist.get_by_test_id("capture").click()
    await expect(stylist.get_by_test_id("still")).to_have_count(2, timeout=30_000)
    await shown(customer, "photo-notice")
    for width, height in SIZES:
        await customer.set_viewport_size({"width": width, "height": height})
        await fits(customer)
        for control in ("leave", "mute", "flip-camera", "chat-toggle"):
            box = await customer.get_by_test_id(control).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, control
            assert box["y"] + box["height"] <= height + 1, (control, width, height)
        await screenshot(customer, f"phone-call-{width}x{height}")

    # The stylist's console on a phone: the palette, stills, chat and notes one tap away.
    await stylist.set_viewport_size({"width": 390, "height": 844})
    await expect(stylist.get_by_test_id("console-tabs")).to_be_visible()
    await stylist.get_by_test_id("tab-palette").click()
    await expect(stylist.get_by_test_id("palette-search")).to_be_visible()
    await expect(stylist.get_by_test_id("chat-input")).to_be_hidden()
    await stylist.get_by_test_id("tab-chat").click()
    await expect(stylist.get_by_test_id("chat-input")).to_be_visible()
    await stylist.get_by_test_id("tab-stills").click()
    await fits(stylist)
    await screenshot(stylist, "phone-console-tabs")

    # The viewer pinch-zooms (two fingers apart), and its buttons stay.
    await stylist.get_by_test_id("still").first.click()
    await stylist.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth > 0"
    )
    before = await stylist.get_by_test_id("viewer-zoom").text_content()
    await stylist.evaluate(
        """() => {
          const frame = document.querySelector("#viewer-frame");
          const box = frame.getBoundingClientRect();
          const cx = box.left + box.width / 2, cy = box.top + box.height / 2;
          const send = (type, id, x) => frame.dispatchEvent(new PointerEvent(type, {
            pointerId: id, pointerType: "touch", clientX: x, clientY: cy, bubbles: true,
            isPrimary: id === 1 }));
          send("pointerdown", 1, cx - 20); send("pointerdown", 2, cx + 20);
          for (let d = 20; d <= 120; d += 20) {
            send("pointermove", 1, cx - d); send("pointermove", 2, cx + d);
          }
          send("pointerup", 1, cx - 120); send("pointerup", 2, cx + 120);
        }"""
    )
    after = await stylist.get_by_test_id("viewer-zoom").text_content()
    assert before and after and int(after.rstrip("%")) > int(before.rstrip("%")) * 3
    await expect(stylist.get_by_test_id("viewer-in")).to_be_visible()
    await fits(stylist)
    await screenshot(stylist, "phone-viewer-pinched")
    await stylist.get_by_test_id("viewer-close").click()

    # The customer's record on the phone.
    await customer.get_by_test_id("leave").click()
    await customer.get_by_test_id("record-link").click()
    await expect(customer.get_by_test_id("record")).to_be_visible()
    for width, height in SIZES:
        await customer.set_viewport_size({"width": width, "height": height})
        await fits(customer)
    await screenshot(customer, "phone-record")
    assert await video_size(stylist, "remote-video") != (0, 0)
    await phone.close()
    await laptop.close()
