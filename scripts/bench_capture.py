#!/usr/bin/env python3
"""Measure captures through the real server: time to each still, bytes, server CPU per capture.

Starts `consult serve` on loopback as its own process; an aiortc customer sends video of a
hand photo at the given size and answers each capture-request by uploading a PNG of its
current frame (as the page does with the camera's photo); an aiortc stylist asks for the
captures. Prints JSON.

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


async def answer_captures(customer: CallClient, track: PhotoTrack, token: str) -> None:
    """The customer's page: photograph the current frame and upload it."""
    while True:
        request = await customer.expect("capture-request", timeout=3600)
        _ok, data = cv2.imencode(".png", track.last_bgr)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
        async with customer.session.post(
            request["upload_url"], data=bytes(data), headers=headers
        ) as r:
            assert r.status == 201, await r.text()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


async def run(size: tuple[int, int], captures: int) -> dict[str, Any]:
    photo = load_photo(HANDS / "victory_closeup_nails_3000x4000.jpg")
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
                answer_captures(customer, track, links["customer_link"].rsplit("/", 1)[1])
            )
            await asyncio.sleep(2)
            idle0, t0 = cpu_seconds(served.pid), time.monotonic()
            await asyncio.sleep(3)
            idle_rate = (cpu_seconds(served.pid) - idle0) / (time.monotonic() - t0)

            times: dict[str, list[float]] = {"camera": [], "stream": []}
            sizes: dict[str, list[int]] = {"camera": [], "stream": []}
            dims: dict[str, str] = {}
            cpu0, w0 = cpu_seconds(served.pid), time.monotonic()
            for _ in range(captures):
                sent = time.monotonic()
                await stylist.send({"type": "capture"})
                for _ in range(2):
                    still = (await stylist.expect("still", timeout=60))["still"]
                    times[still["source"]].append((time.monotonic() - sent) * 1000)
                    sizes[still["source"]].append(still["bytes"])
                    dims[still["source"]] = f"{still['width']}x{still['height']}"
                await asyncio.sleep(0.5)
            cpu1, w1 = cpu_seconds(served.pid), time.monotonic()
            per_capture = ((cpu1 - cpu0) - idle_rate * (w1 - w0)) / captures
            return {
                "size": f"{size[0]}x{size[1]}",
                "captures": captures,
                "capture_to_still_ms": {k: summary(v) for k, v in times.items()},
                "still_bytes": {k: int(statistics.median(v)) for k, v in sizes.items()},
                "still_size": dims,
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
    parser.add_argument("--captures", type=int, default=5)
    args = parser.parse_args()
    results = []
    for text in args.size:
        width, height = (int(v) for v in text.split("x"))
        results.append(asyncio.run(run((width, height), args.captures)))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
