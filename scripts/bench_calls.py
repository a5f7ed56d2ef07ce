#!/usr/bin/env python3
"""Concurrent consultations through the real server: CPU, memory, frame rate, latency, loss.

The server (`consult serve`) runs pinned to one core, the load (this process) to the other;
with ``--workers N`` the server runs N workers, and neither is pinned (they share the cores).
Each consultation is two aiortc peers that send pre-encoded video (VP8, frame numbers stamped
into the pixels, plus moving noise so the bitrate is a camera's: 2.5 Mbps at 720p by default,
what browsers send with the pages' start bitrate) and pre-encoded Opus both ways. Receivers
do not decode: they reassemble each frame from its RTP packets and recognise it by the hash
of its bitstream (every stamped frame differs), so 64 peers fit on one core; the send time of
each frame gives the one-way latency. Each point (N consultations) runs on a
fresh server for a bounded time and prints one JSON line.

    .venv/bin/python scripts/bench_calls.py                       # packets, N = 1,16,32,48
    .venv/bin/python scripts/bench_calls.py --compare             # + transcoding and direct
    .venv/bin/python scripts/bench_calls.py --ns 1,16 --size 640x480 --seconds 10
    .venv/bin/python scripts/bench_calls.py --ns 16 --bitrate 1500000   # the clip's bits/s
    .venv/bin/python scripts/bench_calls.py --ns 16 --ab 'CONSULT_EVENT_LOOP=asyncio;' --rounds 4
    .venv/bin/python scripts/bench_calls.py --ns 1,4 --record --rounds 3   # recording's cost
    .venv/bin/python scripts/bench_calls.py --ns 16 --workers 2    # consult serve --workers 2
    .venv/bin/python scripts/bench_calls.py --ns 24 --workers 1,2 --rounds 2 --server-cpu-quota 0.3

With ``--record`` each point runs twice on fresh servers, interleaved (without, with, with,
without, ...): once forwarding only, once with every consultation recorded (both sides agree
over the websocket, as the pages do); then the median server CPU of each and what recording
adds per consultation, in percent of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import av
import numpy as np
import uvloop
from aiortc.mediastreams import MediaStreamTrack
from benchkit import cpu_seconds, family, family_cpu_seconds, rss_mib, serve
from benchload import FPS, LOOP, Clip, LoopbackLeg, RawLeg, Stream
from netns import reexec_isolated

from tests import wire
from tests.media import pattern_image

GOP = 60
#: What a browser sends at 720p with the bitrate the pages ask for (x-google-start-bitrate 3000).
BITRATES = {"1280x720": 2_500_000, "640x480": 800_000}
SERVER_CPU, LOAD_CPU = "0", 1


# --- pre-encoded media ------------------------------------------------------------------------


def encode_clip(source: int, width: int, height: int, bitrate: int) -> Clip:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = FPS
    ctx.bit_rate = bitrate
    ctx.gop_size = GOP
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(source)
    frames: list[bytes] = []
    for number in range(LOOP):
        y = pattern_image(source, number, width, height).astype(np.int16)
        band = slice(height // 2, height)  # below the stamp: a moving, detailed "hand"
        y[band] += rng.integers(-40, 40, size=y[band].shape, dtype=np.int16)
        yuv = np.concatenate(
            [np.clip(y, 0, 255).astype(np.uint8), np.full((height // 2, width), 128, np.uint8)]
        )
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = number
        frames.extend(bytes(p) for p in ctx.encode(frame))
    frames.extend(bytes(p) for p in ctx.encode(None))
    assert len(frames) == LOOP, len(frames)
    return Clip(frames, {hashlib.sha1(f).hexdigest(): i for i, f in enumerate(frames)})


def encode_tone() -> list[bytes]:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.bit_rate = 64000
    packets: list[bytes] = []
    for i in range(50):  # one second, looped
        t = (np.arange(960) + i * 960) / 48000
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48000
        frame.pts = i * 960
        packets.extend(bytes(p) for p in ctx.encode(frame))
    return packets


class EncodedVideo(MediaStreamTrack):
    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.clip = clip
        self.sent_at: dict[int, float] = {}
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n / FPS - time.monotonic()))
        number = self._n % LOOP
        packet = av.Packet(self.clip.frames[number])
        packet.pts = self._n * (90000 // FPS)
        packet.time_base = fractions.Fraction(1, 90000)
        self.sent_at[number] = time.monotonic()
        self._n += 1
        return packet


class EncodedAudio(MediaStreamTrack):
    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n * 0.02 - time.monotonic()))
        packet = av.Packet(self.packets[self._n % len(self.packets)])
        packet.pts = self._n * 960
        packet.time_base = fractions.Fraction(1, 48000)
        self._n += 1
        return packet


class LoadPeer(LoopbackLeg):
    def __init__(self, clip: Clip, tone: list[bytes]) -> None:
        super().__init__()
        self.video_out = EncodedVideo(clip)
        self.audio_out = EncodedAudio(tone)
        self.video = Stream()
        self.audio = Stream()
        self.pc.addTrack(self.audio_out)
        self.pc.addTrack(self.video_out)
        self.pc.on("track", lambda track: None)  # never read: nothing reaches the tracks
        for transceiver in self.pc.getTransceivers():
            stream = self.video if transceiver.kind == "video" else self.audio
            wire.intercept_received(transceiver.receiver, stream.add_packet)

    def expect_partner(self, partner: LoadPeer) -> None:
        self.video.clip, self.video.sent_at = partner.video_out.clip, partner.video_out.sent_at

    async def close(self) -> None:
        await self.pc.close()


async def join_server(
    http: aiohttp.ClientSession, ws_url: str, peer: LoadPeer | RawLeg
) -> aiohttp.ClientWebSocketResponse | None:
    """Join with media; None if the server had no room for the call (``server-busy``)."""
    ws = await http.ws_connect(ws_url)

    async def expect(kind: str) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads((await ws.receive()).data)
            if message["type"] == kind:
                return message
            if message["type"] == "error" and message["code"] == "server-busy":
                raise Refused()

    try:
        await expect("welcome")
    except Refused:
        await ws.close()
        return None
    await ws.send_str(json.dumps({"type": "offer", "sdp": await peer.offer()}))
    await peer.accept((await expect("answer"))["sdp"])
    _DRAINS.add(asyncio.ensure_future(_drain(ws)))
    return ws


_DRAINS: set[asyncio.Future[None]] = set()


class Refused(Exception):
    """The server refused a new call: it had no room for it (admission, docs/media.md)."""


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def start_recording(
    customer: aiohttp.ClientWebSocketResponse, stylist: aiohttp.ClientWebSocketResponse
) -> None:
    """Both sides agree to record the call, as the pages do (docs/protocol.md, Recording)."""
    await customer.send_str(json.dumps({"type": "record", "action": "ask"}))
    await asyncio.sleep(0.2)  # the question is open before either answers
    for ws in (customer, stylist):
        await ws.send_str(json.dumps({"type": "record", "action": "agree"}))


async def stop_recordings(
    served: Any, sockets: list[aiohttp.ClientWebSocketResponse]
) -> dict[str, Any]:
    """Stop every recording and report what was written (a run that recorded nothing is no
    measurement of recording)."""
    closed = [ws.close_code for ws in sockets if ws.closed]
    if closed:
        raise RuntimeError(f"the server closed {len(closed)} participants' sockets: {closed}")
    for ws in sockets[::2]:
        await ws.send_str(json.dumps({"type": "record", "action": "stop"}))
    files: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    async with served.http.get("/api/consultations", headers=served.staff) as r:
        ids = [c["id"] for c in (await r.json())["consultations"]]
    while time.monotonic() < deadline:
        files = []
        for consultation_id in ids:
            async with served.http.get(
                f"/api/consultations/{consultation_id}", headers=served.staff
            ) as r:
                files += (await r.json())["recordings"]
        if len(files) == 2 * len(ids):
            break
        await asyncio.sleep(0.5)
    return {
        "files": len(files),
        "mbytes": round(sum(f["bytes"] for f in files) / 1e6, 1),
        "seconds_median": statistics.median(f["duration_s"] for f in files) if files else None,
    }


# --- one point --------------------------------------------------------------------------------


_CLIPS: dict[tuple[tuple[int, int], int], dict[int, Clip]] = {}


def _clips(size: tuple[int, int], bitrate: int) -> dict[int, Clip]:
    """The two clips (one per side) at ``size`` and ``bitrate``, encoded once per run."""
    key = (size, bitrate)
    if key not in _CLIPS:
        _CLIPS[key] = {s: encode_clip(s, *size, bitrate) for s in (1, 2)}
    return _CLIPS[key]


def udp_counters() -> dict[str, int]:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    udp = [line for line in lines if line and line[0] == "Udp:"]
    return {k: int(v) for k, v in zip(udp[0][1:], udp[1][1:], strict=True)}


def socket_drops(pid: int) -> dict[str, int]:
    """Datagrams the kernel dropped on ``pid``'s UDP sockets (a full receive buffer): which
    side could not keep up, the server or the load."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            drops[fields[9]] = int(fields[-1])
    return drops


def server_drops(members: list[int]) -> dict[str, int]:
    drops: dict[str, int] = {}
    for member in members:
        with contextlib.suppress(OSError):
            drops |= socket_drops(member)
    return drops


def family_rss_mib(pid: int) -> float:
    """The memory of the server's processes together."""
    total = 0.0
    for member in family(pid):
        with contextlib.suppress(OSError):
            total += rss_mib(member)
    return total


def drops_since(before: dict[str, int], after: dict[str, int]) -> int:
    """Drops in between, on the sockets open at the end."""
    return sum(count - before.get(inode, 0) for inode, count in after.items())


def load_cpu() -> float:
    times = os.times()
    return times.user + times.system


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def run_point(
    mode: str,
    n: int,
    size: tuple[int, int],
    seconds: float,
    bitrate: int | None = None,
    server_env: dict[str, str] | None = None,
    record: bool = False,
    retry_for: float = 60.0,
    cpu_quota: float | None = None,
    load: str = "raw",
    workers: int | None = None,
) -> dict[str, Any]:
    key = f"{size[0]}x{size[1]}"
    # Recording needs the participants' sender reports (lip sync): the aiortc load sends them.
    leg = LoadPeer if load == "aiortc" or record else RawLeg
    bitrate = bitrate or BITRATES.get(key, 2_500_000)
    clips = _clips(size, bitrate)
    tone = encode_tone()
    peers: list[tuple[Any, Any]] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    result: dict[str, Any] = {
        "mode": mode,
        "n": n,
        "size": key,
        "bitrate_target": bitrate,
        "server_env": server_env or {},
        # What the encoder made of it (the clip's bytes over its duration).
        "clip_video_kbps": round(sum(map(len, clips[1].frames)) * 8 * FPS / LOOP / 1000),
        "seconds": seconds,
        "record": record,
        "load": leg.__name__,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        # None: one process pinned to one core (as before --workers); N: `consult serve
        # --workers N`, on any core, as the load is.
        "workers": workers,
    }

    async def measure(pid: int | None) -> None:
        everyone = [p for pair in peers for p in pair]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(p.video._ssrc for p in everyone):
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # past the first key frames and the bitrate ramp
        result["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
        # The server's processes: one, or a supervisor and its workers.
        members = family(pid) if pid else []
        udp0, load0 = udp_counters(), load_cpu()
        each0 = family_cpu_seconds(pid) if pid else {}
        cpu0 = sum(each0.values())
        drops0 = server_drops(members), socket_drops(os.getpid())
        # The event loop's thread (the process's first) apart from the others (recording's
        # writers; aiosqlite's): what a thread costs shows apart from the GIL hand-offs it
        # causes on the loop.
        loop0 = sum(cpu_seconds(m, m) for m in members)
        t0 = time.monotonic()
        for p in everyone:
            p.video.measuring = p.audio.measuring = True
        await asyncio.sleep(seconds)
        for p in everyone:
            p.video.measuring = p.audio.measuring = False
        elapsed = time.monotonic() - t0
        each1 = family_cpu_seconds(pid) if pid else {}
        cpu1, load1, udp1 = sum(each1.values()), load_cpu(), udp_counters()
        drops1 = server_drops(members), socket_drops(os.getpid())
        loop1 = sum(cpu_seconds(m, m) for m in members)
        # Re-encoded frames (transcoding) cannot be recognised without decoding them: count
        # every completed frame there, and leave latency out.
        fps = [
            (p.video.completed if mode == "frames" else p.video.frames) / elapsed for p in everyone
        ]
        latencies = [v for p in everyone for v in p.video.latencies]
        lost = [p.video.lost() for p in everyone]
        audio_lost = [p.audio.lost() for p in everyone]
        server_cpu = 100 * (cpu1 - cpu0) / elapsed
        # What the server forwarded in the window: every packet a receiver got (RTX aside).
        forwarded = sum(len(p.video.seqs) + len(p.audio.seqs) for p in everyone)
        result.update(
            {
                "server_cpu_percent_of_one_core": round(server_cpu, 2) if pid else None,
                # Each process's share (the supervisor first, then the workers): how evenly
                # the kernel spread the calls.
                "server_cpu_percent_per_process": [
                    round(100 * (each1[m] - each0.get(m, each1[m])) / elapsed, 1)
                    for m in members
                    if m in each1
                ]
                if workers
                else None,
                "server_cpu_percent_per_consultation": round(server_cpu / n, 2) if pid else None,
                "server_cpu_us_per_forwarded_packet": round(1e6 * (cpu1 - cpu0) / forwarded, 1)
                if pid and forwarded
                else None,
                "server_loop_thread_cpu_percent": round(100 * (loop1 - loop0) / elapsed, 2)
                if pid
                else None,
                "server_other_threads_cpu_percent": round(
                    100 * ((cpu1 - cpu0) - (loop1 - loop0)) / elapsed, 2
                )
                if pid
                else None,
                "server_loop_thread_us_per_forwarded_packet": round(
                    1e6 * (loop1 - loop0) / forwarded, 1
                )
                if pid and forwarded
                else None,
                "fps_counts": "completed frames" if mode == "frames" else "recognised frames",
                "fps_median": round(statistics.median(fps), 1),
                "fps_min": round(min(fps), 1),
                "latency_ms_p50": pct(latencies, 0.5),
                "latency_ms_p95": pct(latencies, 0.95),
                "video_packets_lost": sum(lo for lo, _ in lost),
                "video_packets_expected": sum(ex for _, ex in lost),
                "video_packets_per_s_per_stream": round(
                    statistics.median(ex for _, ex in lost) / elapsed, 1
                ),
                "audio_packets_lost": sum(lo for lo, _ in audio_lost),
                "unrecognised_frames": sum(p.video.unknown for p in everyone)
                if mode != "frames"
                else None,
                "kernel_udp_drops_server": drops_since(drops0[0], drops1[0]),
                "kernel_udp_drops_load": drops_since(drops0[1], drops1[1]),
                "kernel_udp_drops": {
                    k: udp1[k] - udp0[k] for k in ("InErrors", "RcvbufErrors") if k in udp1
                },
                "load_cpu_percent_of_one_core": round(100 * (load1 - load0) / elapsed, 1),
                "load_send_drops": sum(getattr(p, "send_drops", 0) for p in everyone),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )

    try:
        if mode == "direct":
            for _ in range(n):
                a, b = leg(clips[1], tone), leg(clips[2], tone)
                a.expect_partner(b)
                b.expect_partner(a)
                await a.accept(await b.answer(await a.offer()))
                peers.append((a, b))
            await measure(None)
            return result
        # As scripts/serve runs it: two malloc arenas (docs/operations.md).
        env = {"CONSULT_FORWARDING": mode, "MALLOC_ARENA_MAX": "2", **(server_env or {})}
        result["server_cpu_quota"] = cpu_quota
        pinned = SERVER_CPU if workers is None else None
        async with serve(env, cpus=pinned, cpu_quota=cpu_quota, workers=workers or 1) as served:
            print(f"{mode} n={n}: server pid {served.pid}", file=sys.stderr, flush=True)
            await asyncio.sleep(1)
            idle_rss = family_rss_mib(served.pid)

            async def start(links: dict[str, str]) -> bool:
                customer, stylist = leg(clips[1], tone), leg(clips[2], tone)
                customer.expect_partner(stylist)
                stylist.expect_partner(customer)
                joined = []
                for peer, link in ((customer, "customer_link"), (stylist, "stylist_link")):
                    ws = await join_server(served.http, served.ws_url(links[link]), peer)
                    if ws is None:
                        break
                    joined.append(ws)
                if len(joined) < 2:
                    for ws in joined:
                        await ws.close()
                    await customer.close()
                    await stylist.close()
                    return False
                sockets.extend(joined)
                peers.append((customer, stylist))
                if record:
                    await start_recording(*sockets[-2:])
                return True

            waiting = [await served.consultation() for _ in range(n)]
            waiting = [links for links in waiting if not await start(links)]
            refused = len(waiting)
            # Refused calls try again as the pages do (every 5 s), until a minute passes
            # with none admitted: what is left is what this worker turns away for good.
            idle_since = time.monotonic()
            while waiting and time.monotonic() - idle_since < retry_for:
                await asyncio.sleep(5)
                before = len(waiting)
                waiting = [links for links in waiting if not await start(links)]
                if len(waiting) < before:
                    idle_since = time.monotonic()
            result["refused_at_first"] = refused
            refused = len(waiting)
            # Calls the server refused (server-busy) are not in the point: it measures those
            # it admitted, and says how many it turned away.
            result.update({"admitted": len(peers), "refused": refused})
            n = len(peers)
            if not peers:
                return result
            await measure(served.pid)
            if record:
                result["recordings"] = await stop_recordings(served, sockets)
            rss = family_rss_mib(served.pid)
            result.update(
                {
                    "server_rss_mib": round(rss, 1),
                    "server_rss_mib_idle": round(idle_rss, 1),
                    "rss_mib_per_consultation": round((rss - idle_rss) / n, 2),
                }
            )
            return result
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*(p.close() for pair in peers for p in pair), return_exceptions=True)


def ratios(points: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per packet point: transcoding's CPU per consultation over ours at the same N, and over
    ours against transcoding's cheapest point that kept up (29 fps or more: it cannot run
    many, one core is full at 2 and a full core is not a cheaper consultation)."""
    by = {(p["mode"], p["n"]): p for p in points}
    transcoding = [
        p["server_cpu_percent_per_consultation"]
        for (mode, _n), p in by.items()
        if mode == "frames" and p["server_cpu_percent_per_consultation"] and p["fps_median"] >= 29
    ]
    out = []
    for (mode, n), p in sorted(by.items()):
        if mode != "packets":
            continue
        entry: dict[str, Any] = {"n": n}
        frames = by.get(("frames", n))
        if frames and p["server_cpu_percent_per_consultation"]:
            entry["transcoding_cpu_per_consultation_x"] = round(
                frames["server_cpu_percent_per_consultation"]
                / p["server_cpu_percent_per_consultation"],
                1,
            )
            entry["transcoding_fps_median"] = frames["fps_median"]
        if transcoding and p["server_cpu_percent_per_consultation"]:
            entry["transcoding_cheapest_cpu_per_consultation_x"] = round(
                min(transcoding) / p["server_cpu_percent_per_consultation"], 1
            )
        direct = by.get(("direct", n))
        if direct and p["latency_ms_p50"] is not None and direct["latency_ms_p50"] is not None:
            entry["added_latency_ms_p50"] = round(p["latency_ms_p50"] - direct["latency_ms_p50"], 1)
            entry["added_latency_ms_p95"] = round(p["latency_ms_p95"] - direct["latency_ms_p95"], 1)
        if len(entry) > 1:
            out.append(entry)
    return out


async def paired(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """A/B runs interleaved (A, B, B, A, A, B, ...: drift and other load hit both alike), each
    point on a fresh server; then the median of each side and B's change against A."""
    sides = [dict(item.split("=", 1) for item in side.split(",") if item) for side in args.ab]
    results: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for round_ in range(args.rounds):
        for side in (0, 1) if round_ % 2 == 0 else (1, 0):
            for n in args.ns:
                env = {**args.server_env, **sides[side]}
                point = await run_point(
                    "packets", n, size, args.seconds, args.bitrate, env, load=args.load
                )
                point["side"] = "AB"[side]
                print(json.dumps(point), flush=True)
                results[side].append(point)
    for n in args.ns:
        summary: dict[str, Any] = {"n": n, "a": sides[0], "b": sides[1]}
        for key in ("server_cpu_percent_per_consultation", "server_cpu_us_per_forwarded_packet"):
            a = statistics.median(p[key] for p in results[0] if p["n"] == n)
            b = statistics.median(p[key] for p in results[1] if p["n"] == n)
            summary[key] = {"a": a, "b": b, "change_percent": round(100 * (b - a) / a, 1)}
        summary["loadavg_1m"] = [p["loadavg_1m"] for side in (0, 1) for p in results[side]]
        print(json.dumps({"paired": summary}), flush=True)


#: What every consultation of a point must get (issue 14's bounds): frames per second at every
#: participant, median and lowest.
FPS_MEDIAN_BOUND, FPS_MIN_BOUND = 29.0, 27.0
#: Several workers' latency (p50) may be this much above one worker's at the same point.
LATENCY_MARGIN_MS = 3.0


def within_bounds(point: dict[str, Any]) -> bool:
    """Whether the calls the server admitted kept the frame rate."""
    return bool(
        point.get("admitted")
        and point["fps_median"] >= FPS_MEDIAN_BOUND
        and point["fps_min"] >= FPS_MIN_BOUND
    )


async def workers_paired(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """``--workers 1,2``: the same points on one worker and on two, interleaved (1 2, 2 1,
    ...: drift and other load hit both alike), each on a fresh server. With
    ``--server-cpu-quota C`` the server's cgroup gets C cores' time per worker (each worker
    a core of that size, which admission judges against); without, the whole machine. Per N:
    the consultations each kept within the bounds (admitted, at 29/27 fps), and the ratio."""
    counts: list[int] = args.workers
    results: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    for round_ in range(args.rounds):
        for count in counts if round_ % 2 == 0 else list(reversed(counts)):
            for n in args.ns:
                quota = args.server_cpu_quota * count if args.server_cpu_quota else None
                point = await run_point(
                    "packets", n, size, args.seconds, args.bitrate, args.server_env,
                    cpu_quota=quota, load=args.load, workers=count,
                )  # fmt: skip
                point["round"] = round_
                point["within_bounds"] = within_bounds(point)
                print(json.dumps(point), flush=True)
                results[count].append(point)
    for n in args.ns:
        summary: dict[str, Any] = {"n": n, "rounds": args.rounds, "quota_per_worker":
                                   args.server_cpu_quota}  # fmt: skip
        kept: dict[int, float] = {}
        p50: dict[int, float] = {}
        for count in counts:
            points = [p for p in results[count] if p["n"] == n]
            kept[count] = statistics.median(
                p["admitted"] if p["within_bounds"] else 0 for p in points
            )
            latencies = [p["latency_ms_p50"] for p in points if p.get("latency_ms_p50")]
            p50[count] = statistics.median(latencies) if latencies else float("nan")
            summary[f"workers_{count}"] = {
                "consultations_within_bounds_median": kept[count],
                **{
                    key: [p.get(key) for p in points]
                    for key in (
                        "admitted",
                        "refused",
                        "within_bounds",
                        "fps_median",
                        "fps_min",
                        "latency_ms_p50",
                        "latency_ms_p95",
                        "video_packets_lost",
                        "server_cpu_percent_of_one_core",
                        "server_cpu_percent_per_process",
                        "load_cpu_percent_of_one_core",
                        "loadavg_1m",
                    )
                },
            }
        one, most = counts[0], counts[-1]
        summary["ratio"] = round(kept[most] / kept[one], 2) if kept[one] else None
        summary["latency_p50_within_margin"] = p50[most] <= p50[one] + LATENCY_MARGIN_MS
        print(json.dumps({"workers": summary}), flush=True)


async def recording_cost(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """Forwarding alone and forwarding with every consultation recorded, interleaved; per N,
    the medians of each side and of the rounds' differences (each round's pair ran back to
    back, so load from elsewhere that drifts over minutes hits both of a pair alike)."""
    results: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for record in (False, True) if round_ % 2 == 0 else (True, False):
            for n in args.ns:
                point = await run_point(
                    "packets", n, size, args.seconds, args.bitrate, args.server_env, record
                )
                point["round"] = round_
                print(json.dumps(point), flush=True)
                results[record].append(point)
    keys = {
        "server_cpu_percent_of_one_core": "percent_of_one_core",
        "server_cpu_us_per_forwarded_packet": "us_per_forwarded_packet",
        "server_loop_thread_cpu_percent": "loop_thread_percent_of_one_core",
        "server_other_threads_cpu_percent": "other_threads_percent_of_one_core",
    }
    for n in args.ns:
        summary: dict[str, Any] = {"n": n, "rounds": args.rounds}
        for key, name in keys.items():
            without = [p[key] for p in results[False] if p["n"] == n]
            with_ = [p[key] for p in results[True] if p["n"] == n]
            summary[name] = {
                "forwarding": statistics.median(without),
                "recording": statistics.median(with_),
                "added_median_of_pairs": statistics.median(
                    b - a for a, b in zip(without, with_, strict=True)
                ),
            }
        added = summary["percent_of_one_core"]["added_median_of_pairs"]
        summary["recording_adds_percent_of_one_core_per_consultation"] = round(added / n, 2)
        summary["loadavg_1m"] = [
            (p["loadavg_1m_before"], p["loadavg_1m"]) for side in results.values() for p in side
        ]
        print(json.dumps({"recording": summary}), flush=True)


async def main_async(args: argparse.Namespace) -> None:
    size = tuple(int(v) for v in args.size.split("x"))
    if args.record:
        await recording_cost(args, size)  # type: ignore[arg-type]
        return
    if args.ab:
        await paired(args, size)  # type: ignore[arg-type]
        return
    if args.workers and len(args.workers) > 1:
        await workers_paired(args, size)  # type: ignore[arg-type]
        return
    plan = [("packets", n) for n in args.ns]
    if args.compare:
        plan += [("direct", n) for n in args.ns if n <= args.direct_max]
        plan += [("frames", n) for n in args.transcode_ns]
    points = []
    for mode, n in plan:
        point = await run_point(
            mode,  # type: ignore[arg-type]
            n,
            size,
            args.seconds,
            args.bitrate,
            args.server_env,
            cpu_quota=args.server_cpu_quota,
            load=args.load,
            workers=args.workers[0] if args.workers else None,
        )
        print(json.dumps(point), flush=True)
        points.append(point)
    if args.compare:
        print(json.dumps({"ratios": ratios(points)}), flush=True)


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default="1,16,32,48", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument(
        "--bitrate",
        type=int,
        default=None,
        help="video bits/s of the clips (default: 2500000 at 1280x720, 800000 at 640x480)",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling niceness of the load and the server (it inherits it), e.g. -10 on a "
        "machine others share: the point then measures the server, not the run queue (root)",
    )
    parser.add_argument(
        "--load",
        choices=("raw", "aiortc"),
        default="raw",
        help="raw: legs that send and receive SRTP themselves (scripts/benchload.py; one core "
        "drives N=48); aiortc: full aiortc peers (as before; --record always uses them)",
    )
    parser.add_argument("--compare", action="store_true", help="also transcoding and direct")
    parser.add_argument(
        "--transcode-ns", default="1,2", type=lambda v: [int(x) for x in v.split(",")]
    )
    parser.add_argument("--direct-max", type=int, default=16)
    parser.add_argument(
        "--server-env",
        default={},
        type=lambda v: dict(item.split("=", 1) for item in v.split(",") if item),
        help="the server's environment for every point, e.g. CONSULT_EVENT_LOOP=asyncio",
    )
    parser.add_argument(
        "--ab",
        type=lambda v: v.split(";"),
        default=None,
        help="paired runs of two server environments, e.g. 'CONSULT_EVENT_LOOP=asyncio;'",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="with --ab or --record: runs of each side"
    )
    parser.add_argument(
        "--record", action="store_true", help="the cost of recording every consultation"
    )
    parser.add_argument(
        "--server-cpu-quota",
        type=float,
        default=None,
        help="the server in a cgroup with this many cores' time (e.g. 0.3): where the limit "
        "is, at a load this machine can generate (docs/media.md, Where the limit is)",
    )
    parser.add_argument(
        "--workers",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="`consult serve --workers N` on any core (the load too: they share the machine);"
        " '1,2': both, paired (with --server-cpu-quota: that much per worker)",
    )
    args = parser.parse_args()
    if args.workers is None:
        os.sched_setaffinity(0, {LOAD_CPU})
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    # The load runs on uvloop too: its datagram callbacks and timers are what it spends on.
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
