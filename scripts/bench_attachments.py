#!/usr/bin/env python3
"""Measure voice, video and file messages through the real server: wall time and server CPU per
upload (streamed, hashed, sniffed, read through by PyAV, fsynced, stored, announced) and per
download, PyAV's reading alone, and the server's memory, at the largest each kind may be.
Prints JSON.

Starts `consult serve` on loopback as its own process; the recordings are made with PyAV first
(not timed): 2-minute Opus voice messages in WebM and Ogg, a 60-second H.264/AAC clip in MP4 at
the bitrate that makes it about 50 MB (640x360 noise, 30 fps), and a 25 MB PDF.

    .venv/bin/python scripts/bench_attachments.py --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Served, cpu_seconds, rss_mib, serve
from netns import reexec_isolated

from consult.attachments import probe, sniff
from tests.attachment_media import pdf, recording


def payloads(video_seconds: float) -> dict[str, tuple[str, bytes]]:
    return {
        "voice_webm_opus_120s": ("voice", recording("webm", 119.5)),
        "voice_ogg_opus_120s": ("voice", recording("ogg", 119.5)),
        "video_mp4_h264_aac": (
            "video",
            recording(
                "mp4",
                video_seconds,
                audio="aac",
                video="libx264",
                fps=30,
                size=(640, 360),
                bit_rate=6_400_000,
            ),
        ),
        "file_pdf_25mb": ("file", pdf(padding=25 * 1024 * 1024 - 4096)),
    }


async def timed_upload(
    served: Served, consultation: dict[str, Any], kind: str, data: bytes, n: int
) -> tuple[float, float, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {consultation['customer_link'].rsplit('/', 1)[1]}"}
    cpu, start = cpu_seconds(served.pid), time.perf_counter()
    async with served.http.post(
        f"/api/consultations/{consultation['id']}/attachments",
        params={"kind": kind, "id": f"bench-{n}"},
        data=data,
        headers=headers,
    ) as r:
        body = await r.json()
        assert r.status == 201, body
    return time.perf_counter() - start, cpu_seconds(served.pid) - cpu, body["message"]["attachment"]


async def timed_download(served: Served, attachment: dict[str, Any]) -> tuple[float, float]:
    cpu, start = cpu_seconds(served.pid), time.perf_counter()
    async with served.http.get(attachment["url"], headers=served.staff) as r:
        await r.read()
        assert r.status == 200
    return time.perf_counter() - start, cpu_seconds(served.pid) - cpu


def probe_ms(data: bytes, repeat: int) -> float:
    """PyAV reading the recording through, in this process (the server does it in an executor)."""
    fmt = sniff(data[:16])
    assert fmt is not None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            probe(path, fmt)
            times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


async def run(repeat: int, video_seconds: float) -> dict[str, Any]:
    made = await asyncio.to_thread(payloads, video_seconds)
    async with serve() as served:
        consultation = await served.consultation()
        rss_before = rss_mib(served.pid)
        results: dict[str, Any] = {}
        n = 0
        for name, (kind, data) in made.items():
            ups, downs = [], []
            attachment: dict[str, Any] = {}
            for _ in range(repeat):
                n += 1
                wall, cpu, attachment = await timed_upload(served, consultation, kind, data, n)
                ups.append((wall, cpu))
                downs.append(await timed_download(served, attachment))
            results[name] = {
                "bytes": len(data),
                "duration_s": attachment["duration"],
                "upload_wall_ms_median": round(statistics.median(w for w, _ in ups) * 1000),
                "upload_server_cpu_ms_median": round(statistics.median(c for _, c in ups) * 1000),
                "download_wall_ms_median": round(statistics.median(w for w, _ in downs) * 1000),
            }
            if kind != "file":
                results[name]["probe_ms_median"] = probe_ms(data, repeat)
        return {
            "repeat": repeat,
            "attachments": results,
            "server_rss_mib": {"before": round(rss_before), "after": round(rss_mib(served.pid))},
        }


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--video-seconds", type=float, default=59.5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.repeat, args.video_seconds)), indent=2))


if __name__ == "__main__":
    main()
