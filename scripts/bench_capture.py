#!/usr/bin/env python3
"""Measure captures through the real server, per path: the still's size against the video's,
the time from the stylist's Capture to each still, bytes, server CPU per capture.

Starts `consult serve` on loopback as its own process; an aiortc customer sends video of a
real hand photo at the given size and answers each capture-request as a phone's page does:

- ``camera``: ``takePhoto()`` at the camera's largest size, a 4032x3024 JPEG (a phone's 12 MP
  sensor; the browser's own encoder at quality 0.92), taken ``photo_in_ms`` after the request
  as the page does and uploaded with ``&video=WxH``;
- ``native``: the device camera app's photo, a real phone's 3000x4000 JPEG byte for byte
  (``tests/fixtures/hands``), uploaded with ``&source=native``;
- ``video``: no upload; the server's best frame of the video is the still.

Times are counted from the end of the customer's countdown (never skipped since issue 17;
the default one adds its 3 s to every path). Prints JSON.

    .venv/bin/python scripts/bench_capture.py --size 1280x720 1920x1080 --captures 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)
import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import cpu_seconds, serve
from netns import reexec_isolated

from tests.client import CallClient
from tests.fake_camera import HANDS, load_photo
from tests.media import PhotoTrack

PHOTO = HANDS / "victory_closeup_nails_3000x4000.jpg"
PATHS = ("camera", "native", "video")


def camera_photo(bgr: Any) -> bytes:
    """What ``takePhoto()`` at a 12 MP phone camera's largest size gives: a 4032x3024 JPEG."""
    large = cv2.resize(bgr, (4032, 3024), interpolation=cv2.INTER_CUBIC)
    _ok, data = cv2.imencode(".jpg", large, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return bytes(data)


async def answer_captures(
    customer: CallClient, path: str, size: tuple[int, int], token: str
) -> None:
    """The customer's page, answering each capture-request on ``path``."""
    photo = camera_photo(load_photo(PHOTO)) if path == "camera" else PHOTO.read_bytes()
    while True:
        request = await customer.expect("capture-request", timeout=3600)
        if path == "video":
            continue
        if path == "camera":
            # As the page does: the photo after the video still (a photo stalls the video).
            await asyncio.sleep(request.get("photo_in_ms", 0) / 1000)
        url = f"{request['upload_url']}&video={size[0]}x{size[1]}"
        if path == "native":
            url += "&source=native"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
        async with customer.session.post(url, data=photo, headers=headers) as r:
            assert r.status == 201, await r.text()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


async def run(size: tuple[int, int], path: str, captures: int) -> dict[str, Any]:
    photo = load_photo(PHOTO)
    async with serve() as served:
        links = await served.consultation()
        customer = CallClient(served.http, served.ws_url(links["customer_link"]), "customer")
        stylist = CallClient(served.http, served.ws_url(links["stylist_link"]), "stylist")
        track = PhotoTrack(photo, *size)
        answering = None
        try:
            await customer.connect()
            await customer.start_media(track)
            await stylist.connect()
            await stylist.start_media()
            await stylist.wait_for(
                lambda: any((s.width, s.height) == size for s in stylist.received.video), 30
            )
            answering = asyncio.ensure_future(
                answer_captures(customer, path, size, links["customer_link"].rsplit("/", 1)[1])
            )
            await asyncio.sleep(2)
            idle0, t0 = cpu_seconds(served.pid), time.monotonic()
            await asyncio.sleep(3)
            idle_rate = (cpu_seconds(served.pid) - idle0) / (time.monotonic() - t0)

            times: dict[str, list[float]] = {}
            sizes: dict[str, list[int]] = {}
            dims: dict[str, str] = {}
            video_dims: dict[str, str] = {}
            cpu0, w0 = cpu_seconds(served.pid), time.monotonic()
            for _ in range(captures):
                await stylist.send({"type": "capture"})
                started = await stylist.expect("capture-started")
                sent = time.monotonic() + started["countdown_ms"] / 1000
                for _ in range(1 if path == "video" else 2):
                    still = (await stylist.expect("still", timeout=60))["still"]
                    source = still["source"]
                    times.setdefault(source, []).append((time.monotonic() - sent) * 1000)
                    sizes.setdefault(source, []).append(still["bytes"])
                    dims[source] = f"{still['width']}x{still['height']}"
                    video_dims[source] = f"{still['video_width']}x{still['video_height']}"
                await asyncio.sleep(0.5)
            cpu1, w1 = cpu_seconds(served.pid), time.monotonic()
            per_capture = ((cpu1 - cpu0) - idle_rate * (w1 - w0)) / captures
            return {
                "video": f"{size[0]}x{size[1]}",
                "path": path,
                "captures": captures,
                "capture_to_still_ms": {k: summary(v) for k, v in times.items()},
                "still_bytes": {k: int(statistics.median(v)) for k, v in sizes.items()},
                "still_size": dims,
                "video_size_then": video_dims,
                "server_cpu_ms_per_capture": round(per_capture * 1000, 1),
                "server_cpu_percent_idle_call": round(idle_rate * 100, 1),
            }
        finally:
            if answering is not None:
                answering.cancel()
            await customer.close()
            await stylist.close()


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", nargs="+", default=["1280x720", "1920x1080"])
    parser.add_argument("--path", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--captures", type=int, default=5)
    args = parser.parse_args()
    results = []
    for text in args.size:
        width, height = (int(v) for v in text.split("x"))
        for path in args.path:
            results.append(asyncio.run(run((width, height), path, args.captures)))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
