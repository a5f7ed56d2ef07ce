#!/usr/bin/env python3
"""What recording costs, in CPU, apart from the noise of a whole call: the recorder core on a
720p consultation's packets and the writer thread muxing its frames.

One participant's minute at 2.5 Mbps VP8 (30 fps, 1200-byte packets, a key frame every 2 s)
and Opus (50 packets/s) goes through ``recorder.Recorder`` (packets in arrival order, a
sender report a second) and then through ``media_writer.FrameWriter`` into a WebM file.
Prints CPU seconds, and what that is in percent of one core for a consultation (two
participants), with the machine's load.

    .venv/bin/python scripts/bench_recorder.py [--seconds 60] [--rounds 5]
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
from pathlib import Path

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.media.packets import codec_key
from consult.media.recorder import OpenFile, Recorder, RecorderAction, WriteFrame
from consult.media.relay import Rtp
from consult.recording.media_writer import FrameWriter

VP8 = codec_key("video/VP8", 90000, None, {})
OPUS = codec_key("audio/opus", 48000, 2, {})
BITRATE = 2_500_000
FPS = 30
MTU_PAYLOAD = 1200
T0 = 1_800_000_000.0


def packets(seconds: float) -> list[tuple[float, str, Rtp]]:
    """(arrival, kind, packet) for ``seconds`` of one participant, in arrival order."""
    frame_bytes = BITRATE // 8 // FPS
    events: list[tuple[float, str, Rtp]] = []
    seq = 0
    for n in range(int(seconds * FPS)):
        key = n % (2 * FPS) == 0
        size = frame_bytes * (4 if key else 1)
        parts = -(-size // MTU_PAYLOAD)
        for i in range(parts):
            descriptor = bytes([0x90 if i == 0 else 0x80, 0x80, 0x80 | (n >> 8 & 0x7F), n & 0xFF])
            if i == 0 and key:
                body = b"\x00\x00\x00\x9d\x01\x2a\x00\x05\xd0\x02"
            elif i == 0:
                body = b"\x01\x00\x00"
            else:
                body = b""
            payload = descriptor + body + os.urandom(MTU_PAYLOAD - len(body))
            rtp = Rtp(96, int(i == parts - 1), seq & 0xFFFF, (n * 3000) & 0xFFFFFFFF, payload)
            events.append((T0 + n / FPS + 0.005 + i * 0.0002, "video", rtp))
            seq += 1
    for n in range(int(seconds * 50)):
        rtp = Rtp(111, 0, n & 0xFFFF, n * 960, os.urandom(120))
        events.append((T0 + n * 0.02 + 0.005, "audio", rtp))
    events.sort(key=lambda e: e[0])
    return events


def run_core(events: list[tuple[float, str, Rtp]]) -> tuple[float, list[RecorderAction]]:
    core = Recorder(T0)
    actions: list[RecorderAction] = []
    next_report = T0
    started = time.process_time()
    for at, kind, rtp in events:
        if at >= next_report:
            core.sender_report("video", 1, at, int((at - T0) * 90000), at)
            core.sender_report("audio", 2, at, int((at - T0) * 48000), at)
            next_report += 1.0
        core.packet("video" if kind == "video" else "audio", 1 if kind == "video" else 2,
                    VP8 if kind == "video" else OPUS, rtp, at)  # fmt: skip
        while (action := core.next_action()) is not None:
            actions.append(action)
    core.stop(events[-1][0] + 1)
    while (action := core.next_action()) is not None:
        actions.append(action)
    return time.process_time() - started, actions


async def run_writer(actions: list[RecorderAction], folder: Path) -> float:
    """Write the frames as fast as the thread takes them (the fsync of every second of a
    real recording is left out: see docs/media.md)."""
    writer = FrameWriter(folder / f"{time.monotonic_ns()}.webm", "bench")
    started = time.process_time()
    for action in actions:
        if isinstance(action, OpenFile):
            writer.open(action.tracks)
        elif isinstance(action, WriteFrame):
            writer.write(action.track, action.pts_ms, action.data, action.key)
    await writer.close()
    return time.process_time() - started


async def main_async(args: argparse.Namespace) -> None:
    events = packets(args.seconds)
    cores, writers = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            core_cpu, actions = run_core(events)
            writer_cpu = await run_writer(actions, Path(folder))
            cores.append(core_cpu)
            writers.append(writer_cpu)
    core_cpu, writer_cpu = statistics.median(cores), statistics.median(writers)
    per_consultation = 2 * (core_cpu + writer_cpu) / args.seconds * 100
    print(json.dumps({
        "seconds_of_media": args.seconds,
        "packets_per_participant": len(events),
        "frames_written": sum(isinstance(a, WriteFrame) for a in actions),
        "core_cpu_s": round(core_cpu, 3),
        "core_us_per_packet": round(core_cpu / len(events) * 1e6, 2),
        "writer_cpu_s": round(writer_cpu, 3),
        "percent_of_one_core_per_consultation": round(per_consultation, 3),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
