#!/usr/bin/env python3
"""Soak the real server: many join/leave cycles, some at once; print JSON.

`consult serve` runs in its own process on loopback; a stylist stays in the call while
customers join, connect media and leave, ``--concurrency`` at a time. Bounded by ``--cycles``.
Prints joins per second, errors, and the server's memory and live objects before and after.

    .venv/bin/python scripts/soak.py --cycles 300 --concurrency 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import STAFF_KEY, serve
from netns import reexec_isolated

from tests.client import CallClient
from tests.soak import metrics, run_cycles

WATCHED = ("process_resident_memory_bytes", "consult_peers", "consult_inlets",
           "consult_participants", "consult_asyncio_tasks")  # fmt: skip


async def run(cycles: int, concurrency: int, warmup: int) -> dict[str, Any]:
    # As scripts/serve runs it: few malloc arenas (see docs/operations.md).
    async with serve({"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}) as served:
        # One consultation per concurrent customer, each with its stylist in the call.
        stylists, customers = [], []
        for _ in range(concurrency):
            links = await served.consultation()
            stylist = CallClient(served.http, served.ws_url(links["stylist_link"]), "stylist")
            await stylist.connect()
            await stylist.start_media()
            stylists.append(stylist)
            customers.append(served.ws_url(links["customer_link"]))
        try:
            await run_cycles(served.http, customers, warmup)
            await asyncio.sleep(1)
            before = await metrics(served.http, STAFF_KEY)
            result = await run_cycles(served.http, customers, cycles)
            await asyncio.sleep(5)  # closing peers and websockets finish
            after = await metrics(served.http, STAFF_KEY)
        finally:
            for stylist in stylists:
                await stylist.close()
    rss_before = before["process_resident_memory_bytes"]
    rss_after = after["process_resident_memory_bytes"]
    return {
        "cycles": result.cycles,
        "concurrency": concurrency,
        "errors": len(result.errors),
        "first_errors": result.errors[:5],
        "seconds": round(result.seconds, 1),
        "joins_per_second": round(result.joins_per_second, 2),
        "server_rss_mib_before": round(rss_before / 2**20, 1),
        "server_rss_mib_after": round(rss_after / 2**20, 1),
        "server_rss_growth_percent": round(100 * (rss_after - rss_before) / rss_before, 1),
        "before": {k: before.get(k) for k in WATCHED if k != "process_resident_memory_bytes"},
        "after": {k: after.get(k) for k in WATCHED if k != "process_resident_memory_bytes"},
    }


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cycles, args.concurrency, args.warmup)), indent=2))


if __name__ == "__main__":
    main()
