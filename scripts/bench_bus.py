#!/usr/bin/env python3
"""Measure cross-node delivery: two real `consult serve` nodes on one database (a shared
SQLite file by default, a throwaway PostgreSQL with ``--postgres``), the customer's
conversation page on node A. Staff post messages one after another through A's API (the
page's own node), then through B's (the message reaches A as a hint, and A reads it from the
database); each is timed from the POST's start to the page receiving it. Prints JSON: the
delay's median, 90th and 99th percentiles and maximum per route, the nodes' CPU per message,
and the machine's load average.

    .venv/bin/python scripts/bench_bus.py --messages 200
    .venv/bin/python scripts/bench_bus.py --postgres
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
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Served, cpu_seconds, serve
from cryptography.fernet import Fernet
from netns import reexec_isolated

from tests.postgres_server import running_postgres


async def _links_up(node: Served) -> None:
    for _ in range(300):
        async with node.http.get("/metrics", headers=node.staff) as r:
            lines = (await r.text()).splitlines()
        up = {
            line.split()[0]: float(line.split()[1])
            for line in lines
            if line.startswith("consult_bus_links")
        }
        if up.get("consult_bus_links_out", 0) >= 1 and up.get("consult_bus_links_in", 0) >= 1:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the nodes never linked")


def _summary(delays: list[float]) -> dict[str, float]:
    ordered = sorted(delays)

    def at(fraction: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)

    return {
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": round(1000 * ordered[-1], 2),
    }


async def run(url: str, root: Path, count: int) -> dict[str, Any]:
    seal = Fernet.generate_key()
    for name in ("a", "b"):
        (root / name).mkdir()
        (root / name / "link-seal.key").write_bytes(seal)
    async with AsyncExitStack() as stack:
        nodes: list[Served] = []
        for name in ("a", "b"):  # A first: it migrates the database
            env = {"CONSULT_DATABASE_URL": url, "CONSULT_NODE_ID": f"node-{name}"}
            nodes.append(await stack.enter_async_context(serve(env, data_dir=root / name)))
        a, b = nodes
        for node in nodes:
            await _links_up(node)
        consultation = await a.consultation()
        cid, link = consultation["id"], consultation["customer_link"]
        page = await stack.enter_async_context(
            a.http.ws_connect(f"/ws/conversation?token={link.rsplit('/', 1)[1]}")
        )
        while (await page.receive_json())["type"] != "conversation":
            pass
        results: dict[str, Any] = {}
        for route, node in (("same node (through A)", a), ("other node (through B)", b)):
            delays: list[float] = []
            before = [cpu_seconds(n.pid) for n in nodes]
            for i in range(count):
                client_id = f"{route[0]}{i}"
                started = time.perf_counter()
                async with node.http.post(
                    f"/api/consultations/{cid}/messages",
                    json={"text": f"message {i}", "id": client_id},
                    headers=node.staff,
                ) as r:
                    assert r.status == 201, await r.text()
                while True:
                    message = await page.receive_json(timeout=30)
                    if message["type"] == "chat" and message["id"] == client_id:
                        break
                delays.append(time.perf_counter() - started)
            cpu = {
                f"cpu_ms_per_message_node_{name}": round(
                    1000 * (cpu_seconds(n.pid) - was) / count, 2
                )
                for name, n, was in zip("ab", nodes, before, strict=True)
            }
            results[route] = _summary(delays) | cpu
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="per route")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL")
    args = parser.parse_args()
    reexec_isolated()
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.postgres:
            url = stack.enter_context(running_postgres()).create_database()
        else:
            url = f"sqlite+aiosqlite:///{root / 'shared.db'}"
        results = asyncio.run(run(url, root, args.messages))
    print(
        json.dumps(
            {
                "database": "postgresql" if args.postgres else "sqlite (one file, two nodes)",
                "messages_per_route": args.messages,
                "load_average": os.getloadavg(),
                "routes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
