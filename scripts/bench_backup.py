#!/usr/bin/env python3
"""How long a backup holds up the service: chat and photo uploads timed during a backup.

Fills a data folder with ``--gb`` of stills (random bytes, like PNGs that do not compress),
starts `consult serve` on it, and while a customer sends a chat message every 50 ms and a
photo (a ~2 MB PNG, through the real upload path) every second, measures each message's round
trip (sent to acknowledged: written to the database) and each upload, in three phases:

- ``idle``: no backup (the baseline);
- ``cli``: `consult backup -o FILE` in its own process (what an operator or cron runs);
- ``scheduled``: the service's own scheduled backup (``--backup-dir``), in a worker thread of
  the serving process.

Prints JSON: per phase, message and upload times (median, p99, max, in ms) and the backup's
duration and throughput. The longest pause a backup causes is the phase's max against idle's.

    .venv/bin/python scripts/bench_backup.py --gb 5 --work /var/tmp/bench-backup
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Served, serve
from netns import reexec_isolated

from tests.client import CallClient
from tests.datafolder import fill

STILL_BYTES = 5_000_000


def ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": round(statistics.median(ordered) * 1000, 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def photo() -> bytes:
    noise = np.random.default_rng(7).integers(0, 255, (800, 900, 3), np.uint8)
    path = Path("/tmp/bench-backup-photo.png")
    Image.fromarray(noise).save(path)
    return path.read_bytes()


class Load:
    """A customer chatting every 50 ms and sending a photo every second; timings kept."""

    def __init__(self, served: Served, links: dict[str, Any], png: bytes) -> None:
        self.served = served
        self.links = links
        self.png = png
        self.chat: list[float] = []
        self.uploads: list[float] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        token = self.links["customer_link"].rsplit("/", 1)[1]
        customer = CallClient(
            self.served.http, self.served.ws_url(self.links["customer_link"]), "customer"
        )
        await customer.connect()
        uploads = asyncio.create_task(self._uploads(token))
        try:
            i = 0
            while not self._stop.is_set():
                started = time.perf_counter()
                client_id = f"{time.time()}-{i}"
                await customer.send({"type": "chat", "text": f"m{i}", "id": client_id})
                # Its own acknowledgement (the photos' messages come to the customer too).
                while (await customer.expect("chat", timeout=120))["id"] != client_id:
                    pass
                self.chat.append(time.perf_counter() - started)
                i += 1
                await asyncio.sleep(0.05)
        finally:
            await uploads
            await customer.close()

    async def _uploads(self, token: str) -> None:
        url = f"/api/consultations/{self.links['id']}/chat-photos"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
        i = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            async with self.served.http.post(
                url, params={"id": f"p{time.time()}-{i}"}, data=self.png, headers=headers
            ) as r:
                assert r.status == 201, await r.text()
            self.uploads.append(time.perf_counter() - started)
            i += 1
            await asyncio.sleep(1)

    def stop(self) -> None:
        self._stop.set()


async def phase(
    data: Path, png: bytes, name: str, work: Path, gb_bytes: int, args: list[str]
) -> dict[str, Any]:
    async with serve(data_dir=data, args=args) as served:
        links = await served.consultation()
        load = Load(served, links, png)
        task = asyncio.create_task(load.run())
        started = time.perf_counter()
        result: dict[str, Any] = {}
        if name == "idle":
            await asyncio.sleep(20)
        elif name == "cli":
            await asyncio.sleep(2)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "consult", "backup", "-o", str(work / "cli.backup"),
                "--data", str(data), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await proc.communicate()
            assert proc.returncode == 0, out
            result["backup_seconds"] = round(time.perf_counter() - started, 1)
            (work / "cli.backup").unlink()
        else:
            while True:
                async with served.http.get("/api/backups", headers=served.staff) as r:
                    status = await r.json()
                if status["last_success_at"] or status["last_failure"]:
                    break
                await asyncio.sleep(0.2)
            assert not status["last_failure"], status
            result["backup_seconds"] = round(time.perf_counter() - started, 1)
            shutil.rmtree(work / "scheduled")
        await asyncio.sleep(1)
        load.stop()
        await task
        if "backup_seconds" in result:
            result["backup_MB_per_s"] = round(gb_bytes / 1e6 / result["backup_seconds"], 1)
        return {"chat_ms": ms(load.chat), "upload_ms": ms(load.uploads), **result}


async def main(gb: float, work: Path, phases: list[str]) -> None:
    data = work / "data"
    stills = int(gb * 1e9 / STILL_BYTES)
    if not (data / "consult.db").exists():
        started = time.perf_counter()
        await fill(data, stills=stills, still_bytes=STILL_BYTES)
        print(f"filled {stills} stills in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    size = sum(p.stat().st_size for p in (data / "stills").rglob("*") if p.is_file())
    png = photo()
    results: dict[str, Any] = {
        "stills": stills,
        "stills_bytes": size,
        "photo_bytes": len(png),
        "load_before": os.getloadavg(),
    }
    for name in phases:
        args = []
        if name == "scheduled":
            args = ["--backup-dir", str(work / "scheduled"), "--backup-every", "24h"]
            # Due now, whatever an earlier run of this benchmark did (the schedule is shared
            # through the database: consult/recording/leases.py).
            with sqlite3.connect(data / "consult.db") as db:
                db.execute("UPDATE leases SET holder = NULL, expires_at = NULL, done_at = NULL")
        results[name] = await phase(data, png, name, work, size, args)
        results[name]["load_after"] = os.getloadavg()
        print(name, json.dumps(results[name]), file=sys.stderr)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=5.0, help="gigabytes of stills (5)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/bench-backup"))
    parser.add_argument("--phases", nargs="+", default=["idle", "cli", "scheduled"])
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(options.gb, options.work, options.phases))
