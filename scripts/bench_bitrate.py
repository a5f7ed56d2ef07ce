#!/usr/bin/env python3
"""How fast a real browser's camera arrives at full size, for each x-google bitrate setting.

A headless Chromium (Debian's /usr/bin/chromium) joins as the customer from the real page with
a fake 1280x720 camera made from a hand photo; an aiortc participant joins as the stylist and
records the size of every customer frame the server forwards. For each setting it prints the
time from the first frame to the first full-size frame and the share of full-size frames.

    .venv/bin/python scripts/bench_bitrate.py --seconds 12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchkit import serve  # noqa: E402
from netns import reexec_isolated  # noqa: E402

from tests.browser import FLAGS  # noqa: E402
from tests.client import CallClient  # noqa: E402
from tests.fake_camera import HANDS, write_y4m  # noqa: E402

WIDTH, HEIGHT = 1280, 720
CHROMIUM_FLAGS = [*FLAGS, "--use-fake-ui-for-media-stream"]


async def measure(setting: dict[str, str], y4m: Path, seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with serve(setting) as served:
        links = await served.consultation()
        stylist = CallClient(served.http, served.ws_url(links["stylist_link"]), "stylist")
        await stylist.connect()
        await stylist.start_media()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
            )
            try:
                page = await browser.new_page()
                await page.goto(served.base + "/c/" + links["customer_link"].rsplit("/", 1)[1])
                await page.get_by_test_id("join-call").click()  # the conversation first
                await page.get_by_test_id("join").click()
                joined = time.monotonic()

                def camera() -> list[Any]:
                    return [s for s in stylist.received.video if not s.card and s.at >= joined]

                await stylist.wait_for(camera, 30)
                first = camera()[0].at
                await asyncio.sleep(seconds)
            finally:
                await browser.close()
        frames = [(s.at - first, s.width, s.height) for s in camera()]
        await stylist.close()
    window = [f for f in frames if f[0] <= seconds]
    full = [f for f in window if (f[1], f[2]) == (WIDTH, HEIGHT)]
    sizes: dict[str, int] = {}
    for _, w, h in window:
        sizes[f"{w}x{h}"] = sizes.get(f"{w}x{h}", 0) + 1
    return {
        "setting": setting or {"CONSULT_VIDEO_BITRATES": "default"},
        "join_to_first_frame_ms": round((first - joined) * 1000),
        "first_full_size_after_ms": round(full[0][0] * 1000) if full else None,
        "full_size_share": round(len(full) / len(window), 3) if window else 0,
        "fps": round(len(window) / seconds, 1),
        # frames per second, second by second: how the picture holds up after the start
        "fps_by_second": [sum(1 for f in window if i <= f[0] < i + 1) for i in range(int(seconds))],
        "full_size_fps_last_5s": round(sum(1 for f in full if f[0] >= seconds - 5) / 5, 1),
        "frames_by_size": sizes,
    }


async def run(seconds: float, mins: list[int]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(
            HANDS / "victory_closeup_nails_3000x4000.jpg", Path(tmp) / "hand.y4m", WIDTH, HEIGHT
        )
        settings: list[dict[str, str]] = [{"CONSULT_VIDEO_BITRATES": "off"}]
        settings += [
            {"CONSULT_VIDEO_START_KBPS": str(max(3000, m)), "CONSULT_VIDEO_MIN_KBPS": str(m)}
            for m in mins
        ]
        return [await measure(s, y4m, seconds) for s in settings]


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--min", type=int, nargs="*", default=[300, 600, 1000, 1500, 2000])
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.seconds, args.min)), indent=2))


if __name__ == "__main__":
    main()
