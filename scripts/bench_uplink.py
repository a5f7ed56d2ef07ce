#!/usr/bin/env python3
"""What a weak customer uplink does to the video, for each x-google-min-bitrate setting.

As scripts/bench_bitrate.py (Chromium joins as the customer with a fake 1280x720 hand camera, an
aiortc stylist records every forwarded customer frame), but the browser runs in its own network
namespace behind a veth pair whose browser end is shaped with tbf (this kernel has no netem):

    outer namespace (unshare -n): consult server + stylist, veth cu0 10.77.0.1/24
    browser namespace (held by `unshare -n cat`): Chromium via nsenter, cu1 10.77.0.2/24,
        egress of cu1 shaped: tbf rate <uplink>kbit burst <burst>kbit latency <latency>ms

Each clip frame carries its number, so only new pictures count: not the last one the server
re-sends while the video stalls, nor a stale or garbled one decoded after lost packets. For each
uplink and setting it prints fps (overall and second by second), the share of full-size frames,
frames by size, freezes (gaps > 200 ms between new pictures), tbf drops and the browser's view
of the link at the end. Needs root (unshare, ip, tc, nsenter):

    .venv/bin/python scripts/bench_uplink.py --seconds 20 --uplink-kbps 800 1500 --min 300 1000 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)
import aiohttp
import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from av import VideoFrame

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_bitrate import CHROMIUM_FLAGS, HEIGHT, WIDTH  # noqa: E402
from benchkit import STAFF_KEY  # noqa: E402
from netns import reexec_isolated  # noqa: E402

from tests.client import CallClient  # noqa: E402
from tests.fake_camera import HANDS, write_y4m  # noqa: E402

SERVER_IP, BROWSER_IP, PORT = "10.77.0.1", "10.77.0.2", 8080
OUTER_DEV, INNER_DEV = "cu0", "cu1"
FREEZE_MS = 200
MARK_BITS, MARK_PX = 6, 32  # each camera frame's number (0..59), in cells at the top left
# Keeps every RTCPeerConnection the page makes, to read the encoder's own stats at the end.
KEEP_PCS = """(() => { const P = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = class extends P {
    constructor(...a) { super(...a); window.__pcs.push(this); } }; })();"""
BROWSER_STATS = """async () => { const out = {};
  for (const pc of window.__pcs) (await pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") Object.assign(out, {
      sent_size: `${s.frameWidth}x${s.frameHeight}`, sent_fps: s.framesPerSecond,
      target_kbps: Math.round((s.targetBitrate || 0) / 1000) });
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") Object.assign(out, {
      available_kbps: Math.round((s.availableOutgoingBitrate || 0) / 1000),
      rtt_ms: Math.round((s.currentRoundTripTime || 0) * 1000) });
  }); return out; }"""


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class BrowserNet:
    """The browser's network namespace (see browser_net) and how to run things in it."""

    def __init__(self, pid: int, folder: Path) -> None:
        self.ns = f"/proc/{pid}/ns/net"
        # What Playwright launches as the browser (over a pipe): Chromium inside the namespace.
        self.chromium = folder / "chromium-in-netns"
        self.chromium.write_text(
            f'#!/bin/sh\nexec nsenter --net={self.ns} /usr/bin/chromium "$@"\n'
        )
        self.chromium.chmod(0o755)

    def run(self, *cmd: str) -> str:
        return sh("nsenter", f"--net={self.ns}", *cmd)

    def shape(self, kbps: int, burst_kbit: int, latency_ms: int) -> None:
        rate, burst, latency = f"{kbps}kbit", f"{burst_kbit}kbit", f"{latency_ms}ms"
        self.run("tc", "qdisc", "replace", "dev", INNER_DEV, "root", "tbf",
                 "rate", rate, "burst", burst, "latency", latency)  # fmt: skip

    def dropped(self) -> int:
        match = re.search(r"dropped (\d+)", self.run("tc", "-s", "qdisc", "show", "dev", INNER_DEV))
        return int(match[1]) if match else -1


@contextmanager
def browser_net(folder: Path) -> Iterator[BrowserNet]:
    """A new network namespace linked to ours by a veth pair, held by a helper process."""
    # `cat` ends with us, even if we are killed: its stdin is our pipe.
    helper = subprocess.Popen(["unshare", "-n", "sh", "-c", "echo && exec cat"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert helper.stdout is not None and helper.stdout.readline() == b"\n"  # unshared
        net = BrowserNet(helper.pid, folder)
        sh("ip", "link", "add", OUTER_DEV, "type", "veth", "peer", "name", INNER_DEV,
           "netns", str(helper.pid))  # fmt: skip
        sh("ip", "addr", "add", f"{SERVER_IP}/24", "dev", OUTER_DEV)
        sh("ip", "link", "set", OUTER_DEV, "up")
        net.run("ip", "link", "set", "lo", "up")
        net.run("ip", "addr", "add", f"{BROWSER_IP}/24", "dev", INNER_DEV)
        net.run("ip", "link", "set", INNER_DEV, "up")
        yield net
    finally:
        subprocess.run(["ip", "link", "del", OUTER_DEV], capture_output=True)  # both ends
        helper.kill()  # the namespace goes with its last process
        helper.wait()


def mark_y4m(path: Path) -> Path:
    """Draw each frame's number into the clip's top left corner, as black and white cells."""
    data = bytearray(path.read_bytes())
    frames = np.frombuffer(data, np.uint8, offset=data.index(b"\n") + 1)
    head = len(b"FRAME\n")
    for i, frame in enumerate(frames.reshape(-1, head + WIDTH * HEIGHT * 3 // 2)):
        luma = frame[head : head + WIDTH * HEIGHT].reshape(HEIGHT, WIDTH)
        for bit in range(MARK_BITS):
            luma[:MARK_PX, bit * MARK_PX : (bit + 1) * MARK_PX] = 235 if i >> bit & 1 else 16
    path.write_bytes(data)
    return path


def read_mark(frame: VideoFrame) -> int | None:
    grey = frame.to_ndarray(format="gray")
    cy, cx = grey.shape[0] * MARK_PX / HEIGHT, grey.shape[1] * MARK_PX / WIDTH
    mark = 0
    for bit in range(MARK_BITS):
        cell = grey[int(cy / 4) : int(cy * 3 / 4), int((bit + 0.25) * cx) : int((bit + 0.75) * cx)]
        if 70 < (mean := float(cell.mean())) < 180:
            return None  # no mark: the waiting card, or a picture garbled by lost packets
        mark |= (mean >= 128) << bit
    return mark


class Stylist(CallClient):
    """Also notes the mark of each video frame received, in received.video's order."""

    marks: list[int | None]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self.marks, recv = [], track.recv

            async def marked() -> Any:
                frame = await recv()
                assert isinstance(frame, VideoFrame)
                self.marks.append(read_mark(frame))
                return frame

            track.recv = marked  # type: ignore[method-assign]
        super()._on_track(track)


def freezes(times: list[float], end: float) -> list[float]:
    """Gaps over FREEZE_MS (ms) between customer frames, and from the last one to ``end``."""
    gaps = [(b - a) * 1000 for a, b in zip(times, [*times[1:], end], strict=True)]
    return [g for g in gaps if g > FREEZE_MS]


async def measure(
    net: BrowserNet, setting: dict[str, str], y4m: Path, seconds: float, tbf: dict[str, int]
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    net.shape(tbf["rate_kbit"], tbf["burst_kbit"], tbf["latency_ms"])
    dropped = net.dropped()  # `tc qdisc replace` keeps the counters
    base = f"http://{SERVER_IP}:{PORT}"
    async with AsyncExitStack() as stack:  # undone in reverse: browser, stylist, server
        data = stack.enter_context(tempfile.TemporaryDirectory())
        env = dict(os.environ, CONSULT_STAFF_KEY=STAFF_KEY, **setting)
        server = subprocess.Popen(
            [sys.executable, "-m", "consult", "serve", "--host", SERVER_IP, "--port", str(PORT),
             "--data", data, "--media-address", SERVER_IP, "--log-level", "warning",
             "--workers", "1"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(server.wait)
        stack.callback(server.kill)  # its data folder is thrown away: no graceful stop needed
        http = await stack.enter_async_context(aiohttp.ClientSession(base_url=base))
        for _ in range(300):
            try:
                async with http.get("/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        async with http.post(
            "/api/consultations",
            json={"customer_name": "Bench"},
            headers={"Authorization": f"Bearer {STAFF_KEY}"},
        ) as r:
            links = await r.json()
        token = links["stylist_link"].rsplit("/", 1)[1]
        # Its 127.0.0.1 candidate pairs fine with the server's 10.77.0.1: both are local.
        stylist = Stylist(http, f"ws://{SERVER_IP}:{PORT}/ws?token={token}", "stylist")
        stack.push_async_callback(stylist.close)
        await stylist.connect()
        await stylist.start_media()
        pw = await stack.enter_async_context(async_playwright())
        browser = await pw.chromium.launch(
            executable_path=str(net.chromium),
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}",
                  f"--unsafely-treat-insecure-origin-as-secure={base}"],
        )  # fmt: skip
        stack.push_async_callback(browser.close)
        page = await browser.new_page()
        await page.add_init_script(KEEP_PCS)
        await page.goto(links["customer_link"])
        await page.get_by_test_id("join-call").click()  # the conversation first
        await page.get_by_test_id("join").click()
        joined = time.monotonic()

        def camera() -> list[Any]:
            return [s for s in stylist.received.video if not s.card and s.at >= joined]

        await stylist.wait_for(camera, 30)
        first = camera()[0].at
        await asyncio.sleep(seconds)
        encoder = await page.evaluate(BROWSER_STATS)
        # A new picture of the customer is a frame whose mark is readable and new: the server
        # re-sends the last one while their video stalls; a decoder that lost its reference
        # frame updates a stale or garbled picture.
        frames, stale, last = [], 0, None
        for s, mark in zip(stylist.received.video, stylist.marks, strict=True):
            if s.card or not first <= s.at <= first + seconds:
                continue
            if mark is None or mark == last:
                stale += 1
            else:
                frames.append((s.at - first, s.width, s.height))
                last = mark
    window = frames
    full = [f for f in window if (f[1], f[2]) == (WIDTH, HEIGHT)]
    sizes = Counter(f"{w}x{h}" for _, w, h in window)
    frozen = freezes([f[0] for f in window], seconds)
    return {
        "uplink_kbps": tbf["rate_kbit"],
        "tbf": tbf,
        "setting": setting,
        "join_to_first_frame_ms": round((first - joined) * 1000),
        "stale_frames": stale,
        "fps": round(len(window) / seconds, 1),
        "fps_by_second": [sum(1 for f in window if i <= f[0] < i + 1) for i in range(int(seconds))],
        "full_size_share": round(len(full) / len(window), 3) if window else 0,
        "frames_by_size": sizes,
        "freezes": len(frozen),
        "longest_freeze_ms": round(max(frozen, default=0)),
        "frozen_ms": round(sum(frozen)),
        "tbf_dropped_packets": net.dropped() - dropped,
        "browser_at_end": encoder,
        "load_avg_1m": round(os.getloadavg()[0], 1),  # both ends share this machine's CPUs
    }


async def run(
    seconds: float, uplinks: list[int], mins: list[int], burst_kbit: int, latency_ms: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    # Stopped, unwind as after an error: cancel just this task (SIGINT does the same).
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory() as tmp, browser_net(Path(tmp)) as net:
        photo = HANDS / "victory_closeup_nails_3000x4000.jpg"
        y4m = mark_y4m(write_y4m(photo, Path(tmp) / "hand.y4m", WIDTH, HEIGHT))
        settings: list[dict[str, str]] = [{"CONSULT_VIDEO_BITRATES": "off"}]
        settings += [
            {"CONSULT_VIDEO_START_KBPS": str(max(3000, m)), "CONSULT_VIDEO_MIN_KBPS": str(m)}
            for m in mins
        ]
        for kbps in uplinks:
            tbf = {"rate_kbit": kbps, "burst_kbit": burst_kbit, "latency_ms": latency_ms}
            for setting in settings:
                results.append(await measure(net, setting, y4m, seconds, tbf))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--uplink-kbps", type=int, nargs="+", default=[800, 1500])
    parser.add_argument("--min", type=int, nargs="*", default=[300, 1000, 2000])
    parser.add_argument("--burst-kbit", type=int, default=32, help="tbf bucket (default 32)")
    parser.add_argument("--latency-ms", type=int, default=300, help="tbf queue (default 300)")
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.environ.get("CONSULT_ISOLATED"):
        sys.exit("bench_uplink: needs root and `unshare -n` (to shape a private veth pair)")
    try:
        results = asyncio.run(
            run(args.seconds, args.uplink_kbps, args.min, args.burst_kbit, args.latency_ms)
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        sys.exit("bench_uplink: stopped")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
