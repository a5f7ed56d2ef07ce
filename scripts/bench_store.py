#!/usr/bin/env python3
"""What the shared chat numbering costs: chat messages stored per second by concurrent writers
on two nodes (two stores, two connection pools), on SQLite and on a throwaway PostgreSQL.

Every message takes the next number under a lock on its consultation's row (on SQLite, under
the database's write lock): ``--consultations 1`` puts every writer on one consultation (the
worst case), more spreads them. Each ``add_message`` is timed from call to commit.

Prints JSON per backend: messages, seconds, messages per second, and latency (median, p99,
max, in ms), with the machine's load average when it started.

    .venv/bin/python scripts/bench_store.py --writers 8 --messages 100 --consultations 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from tests.postgres_server import running_postgres


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered) * 1000, 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


async def run(url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    sealer = TokenSealer(load_seal_key(folder))
    nodes = [await Store.open(url, sealer, node=name) for name in ("a", "b")]
    try:
        ids = [
            (await nodes[0].create_consultation(customer_name="Bench", link_ttl=timedelta(1)))[0].id
            for _ in range(args.consultations)
        ]
        latencies: list[float] = []

        async def writer(n: int) -> None:
            store, consultation = nodes[n % 2], ids[n % len(ids)]
            for i in range(args.messages):
                start = time.perf_counter()
                await store.add_message(consultation, "customer", f"w{n}-{i}", "a message")
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(args.writers)))
        seconds = time.perf_counter() - start
        for consultation in ids:  # the numbers stayed gap-free
            seqs = [m.seq for m in await nodes[0].messages(consultation)]
            assert seqs == list(range(1, len(seqs) + 1)), "a gap or a repeat"
    finally:
        for node in nodes:
            await node.close()
    return {
        "messages": len(latencies),
        "seconds": round(seconds, 2),
        "per_second": round(len(latencies) / seconds, 1),
        "latency_ms": ms(latencies),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average": os.getloadavg(), "settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sqlite = f"sqlite+aiosqlite:///{folder / 'consult.db'}"
        results["sqlite"] = await run(sqlite, folder, args)
        with running_postgres() as server:
            results["postgresql"] = await run(server.create_database(), folder, args)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_store.py", description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (8)")
    parser.add_argument("--messages", type=int, default=100, help="messages per writer (100)")
    parser.add_argument("--consultations", type=int, default=1, help="spread over (1)")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
