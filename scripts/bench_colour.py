#!/usr/bin/env python3
"""Measure the colour tools on a still through the real server: wall time and server CPU per
tool, and the server's memory, on a 12-megapixel phone photo. Prints JSON.

Starts `consult serve` on loopback as its own process, sends the photo as a chat photo, then
runs each tool ``--repeat`` times (the server runs them one at a time, in an executor).

    .venv/bin/python scripts/bench_colour.py --repeat 5
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Served, cpu_seconds, rss_mib, serve
from netns import reexec_isolated

from tests.fake_camera import HANDS

PHOTO = HANDS / "victory_closeup_nails_3000x4000.jpg"
NAILS = [
    [[1100, 700], [1300, 680], [1320, 900], [1120, 920]],
    [[1700, 800], [1880, 790], [1900, 1000], [1710, 1010]],
]


async def timed(
    served: Served, method: str, path: str, body: Any, headers: dict[str, str], want: int
) -> tuple[float, float]:
    cpu, start = cpu_seconds(served.pid), time.perf_counter()
    async with served.http.request(method, path, json=body, headers=headers) as r:
        await r.read()
        assert r.status == want, (path, r.status, await r.text())
    return time.perf_counter() - start, cpu_seconds(served.pid) - cpu


async def run(repeat: int) -> dict[str, Any]:
    async with serve() as served:
        consultation = await served.consultation()
        customer = {"Authorization": f"Bearer {consultation['customer_link'].rsplit('/', 1)[1]}"}
        stylist = {"Authorization": f"Bearer {consultation['stylist_link'].rsplit('/', 1)[1]}"}
        async with served.http.post(
            f"/api/consultations/{consultation['id']}/chat-photos",
            params={"id": "bench"},
            data=PHOTO.read_bytes(),
            headers=customer | {"Content-Type": "image/jpeg"},
        ) as r:
            still = (await r.json())["message"]["still"]
        async with served.http.get("/api/swatches", headers=customer) as r:
            swatch = (await r.json())["swatches"][16]
        base = f"/api/stills/{still['id']}"
        await timed(served, "PUT", f"{base}/nails", {"polygons": NAILS}, stylist, 200)
        rss_before = rss_mib(served.pid)
        tools = {
            "sample": ("POST", f"{base}/sample", {"x": 1500, "y": 2000, "radius": 4}, 200),
            "undertone": ("GET", f"{base}/undertone", None, 200),
            "white_balance_reference": (
                "POST", f"{base}/white-balance", {"rect": [100, 100, 200, 200]}, 201,
            ),
            "white_balance_grey_world": ("POST", f"{base}/white-balance", {}, 201),
            "try_on": ("POST", f"{base}/try-on", {"swatch_id": swatch["id"]}, 201),
        }  # fmt: skip
        results: dict[str, Any] = {}
        for name, (method, path, body, want) in tools.items():
            runs = [await timed(served, method, path, body, stylist, want) for _ in range(repeat)]
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            results[name] = {
                "wall_ms_median": round(statistics.median(walls) * 1000),
                "wall_ms_max": round(max(walls) * 1000),
                "server_cpu_ms_median": round(statistics.median(cpus) * 1000),
            }
        return {
            "photo": f"{still['width']}x{still['height']} JPEG, {still['bytes']} bytes",
            "repeat": repeat,
            "tools": results,
            "server_rss_mib": {"before": round(rss_before), "after": round(rss_mib(served.pid))},
        }


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.repeat)), indent=2))


if __name__ == "__main__":
    main()
