#!/usr/bin/env python3
"""Measure the time from a participant's offer to the server's answer, with the ICE servers the
service is given: none, or a TURN server that never answers (a firewall that drops its packets).

Starts `consult serve` on loopback as its own process for each case and prints JSON.

    .venv/bin/python scripts/bench_answer.py --offers 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import serve
from netns import reexec_isolated

from tests.client import CallClient


async def answer_times(ice_servers: str, offers: int) -> list[float]:
    async with serve(env={"CONSULT_ICE_SERVERS": ice_servers}) as served:
        links = await served.consultation()
        times = []
        for _ in range(offers):
            client = CallClient(served.http, served.ws_url(links["customer_link"]), "customer")
            try:
                await client.connect()
                await client.start_media()  # sends the offer, waits for the answer
                assert client.offer_sent_at is not None
                times.append((time.monotonic() - client.offer_sent_at) * 1000)
            finally:
                await client.close()
        return times


async def run(offers: int) -> dict[str, Any]:
    # A "TURN server" that takes every packet and never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        silent = f"turn:user:pass@127.0.0.1:{sink.getsockname()[1]}?transport=udp"
        result = {}
        for name, servers in (("no ice servers", ""), ("unreachable turn", silent)):
            times = await answer_times(servers, offers)
            result[name] = {
                "answer_ms_median": round(statistics.median(times), 1),
                "answer_ms_max": round(max(times), 1),
            }
        return {"offers": offers, **result}


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offers", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.offers)), indent=2))


if __name__ == "__main__":
    main()
