#!/usr/bin/env python3
"""Measure a call through the real server: time to first partner frame, frame rate, latency, CPU.

Starts `consult serve` on loopback as its own process, connects two aiortc participants that
send synthetic video (frame numbers drawn into the pixels), and prints JSON.

    .venv/bin/python scripts/bench_call.py --size 1280x720 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import cpu_seconds, rss_mib, serve
from netns import reexec_isolated

from tests.client import CallClient
from tests.media import PatternTrack


def direction(receiver: CallClient, sender: CallClient, partner: str, since: float, until: float,
              started: float) -> dict[str, Any]:  # fmt: skip
    frames = receiver.partner_frames(partner)
    window = [(t, n) for t, n in frames if since <= t <= until]
    assert isinstance(sender.video_track, PatternTrack)
    made = sender.video_track.made_at
    latencies = [(t - made[n]) * 1000 for t, n in window if n in made]
    sizes = {
        (s.width, s.height) for s in receiver.received.video if s.pattern and since <= s.at <= until
    }
    first = frames[0][0] if frames else None
    return {
        "first_partner_frame_ms": round((first - started) * 1000, 1) if first else None,
        "fps": round(len({n for _, n in window}) / (until - since), 1),
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p95": round(statistics.quantiles(latencies, n=20)[18], 1)
        if len(latencies) >= 20
        else None,
        "received_sizes": sorted(f"{w}x{h}" for w, h in sizes),
    }


async def run(size: tuple[int, int], seconds: float) -> dict[str, Any]:
    async with serve() as served:
        links = await served.consultation()
        customer = CallClient(
            served.http, served.ws_url(links["customer_link"]), "customer", video_size=size
        )
        stylist = CallClient(
            served.http, served.ws_url(links["stylist_link"]), "stylist", video_size=size
        )
        try:
            await customer.connect()
            await customer.start_media()
            await customer.wait_for(lambda: customer.placeholder_frames() >= 1)
            await stylist.connect()
            started = time.monotonic()  # the call becomes two-way with this offer
            await stylist.start_media()
            await customer.wait_for(lambda: customer.partner_frames("stylist"), 30)
            await stylist.wait_for(lambda: stylist.partner_frames("customer"), 30)
            await asyncio.sleep(2)  # let the encoders settle
            cpu0, t0 = cpu_seconds(served.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_seconds(served.pid), time.monotonic()
            return {
                "size": f"{size[0]}x{size[1]}",
                "seconds": seconds,
                # What the server was started with (consult.config: packets unless told).
                "forwarding": os.environ.get("CONSULT_FORWARDING") or "packets",
                "customer_to_stylist": direction(stylist, customer, "customer", t0, t1, started),
                "stylist_to_customer": direction(customer, stylist, "stylist", t0, t1, started),
                "server_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
                "server_rss_mib": round(rss_mib(served.pid), 1),
                "cores": os.cpu_count(),
            }
        finally:
            await customer.close()
            await stylist.close()


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="video size each side sends")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(json.dumps(asyncio.run(run((width, height), args.seconds)), indent=2))


if __name__ == "__main__":
    main()
