#!/usr/bin/env python3
"""What a weak customer uplink does to the video, for each x-google-min-bitrate setting.

As scripts/bench_bitrate.py (Chromium joins as the customer with a fake 1280x720 hand camera, an
aiortc stylist records every forwarded customer frame), but the browser runs in its own network
namespace behind a veth pair whose browser end is shaped with a tbf qdisc (netem is not needed):

    outer namespace (unshare -n): consult server + stylist, veth cu0 10.77.0.1/24
    browser namespace (held by `unshare -n cat`): Chromium via nsenter, cu1 10.77.0.2/24,
        egress of cu1 shaped: tbf rate <uplink>kbit burst <burst>kbit latency <latency>ms

For each uplink and setting it prints fps (overall and second by second), the share of full-size
frames, frames by size, freezes (gaps > 200 ms between customer frames), tbf drops and what
the browser's encoder reported at the end. Needs root (unshare, ip, tc, nsenter):

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

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_bitrate import CHROMIUM_FLAGS, HEIGHT, STAFF_KEY, WIDTH  # noqa: E402
from netns import reexec_isolated  # noqa: E402

from tests.client import CallClient  # noqa: E402
from tests.fake_camera import HANDS, write_y4m  # noqa: E402

SERVER_IP, BROWSER_IP, PORT = "10.77.0.1", "10.77.0.2", 8080
OUTER_DEV, INNER_DEV = "cu0", "cu1"
FREEZE_MS = 200
# Keeps every RTCPeerConnection the page makes, to read the encoder's own stats at the end.
KEEP_PCS = """(() => { const P = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = class extends P {
    constructor(...a) { super(...a); window.__pcs.push(this); } }; })();"""
BROWSER_STATS = """async () => { const out = {};
  for (const pc of window.__pcs) (await pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") Object.assign(out, {
      sent_size: `${s.frameWidth}x${s.frameHeight}`, sent_fps: s.framesPerSecond,
      target_kbps: Math.round((s.targetBitrate || 0) / 1000),
      quality_limitation: s.qualityLimitationReason,
      limited_s: Object.fromEntries(Object.entries(s.qualityLimitationDurations || {})
        .filter(([, v]) => v > 0).map(([k, v]) => [k, Math.round(v * 10) / 10])) });
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") Object.assign(out, {
      available_kbps: Math.round((s.availableOutgoingBitrate || 0) / 1000),
      rtt_ms: Math.round((s.currentRoundTripTime || 0) * 1000) });
  }); return out; }"""


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class BrowserNet:
    """A network namespace for the browser, linked to ours by a veth pair; kept by a helper."""

    def __init__(self, helper: subprocess.Popen[bytes], folder: Path) -> None:
        self.ns = f"/proc/{helper.pid}/ns/net"
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
    # `cat` holds the namespace and ends with us, even killed: its stdin is our pipe.
    helper = subprocess.Popen(["unshare", "-n", "cat"], stdin=subprocess.PIPE)
    try:
        net = BrowserNet(helper, folder)
        own = os.readlink("/proc/self/ns/net")
        for _ in range(100):  # until unshare has made the namespace and exec'd cat
            if os.readlink(net.ns) != own:
                break
            time.sleep(0.02)
        pid = str(helper.pid)
        sh("ip", "link", "add", OUTER_DEV, "type", "veth", "peer", "name", INNER_DEV, "netns", pid)
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


def freezes(times: list[float], end: float) -> list[float]:
    """Gaps over FREEZE_MS (ms) between customer frames, and from the last one to ``end``."""
    gaps = [(b - a) * 1000 for a, b in zip(times, [*times[1:], end], strict=True)]
    return [g for g in gaps if g > FREEZE_MS]


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:  # stuck in its graceful shutdown
        server.kill()
        server.wait()


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
             "--data", data, "--media-address", SERVER_IP, "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(stop, server)
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
        stylist = CallClient(http, f"ws://{SERVER_IP}:{PORT}/ws?token={token}", "stylist")
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
        await page.get_by_test_id("join").click()
        joined = time.monotonic()

        def camera() -> list[Any]:
            return [s for s in stylist.received.video if not s.card and s.at >= joined]

        await stylist.wait_for(camera, 30)
        first = camera()[0].at
        await asyncio.sleep(seconds)
        encoder = await page.evaluate(BROWSER_STATS)
        frames = [(s.at - first, s.width, s.height) for s in camera() if s.at >= first]
    window = [f for f in frames if f[0] <= seconds]
    full = [f for f in window if (f[1], f[2]) == (WIDTH, HEIGHT)]
    sizes = Counter(f"{w}x{h}" for _, w, h in window)
    frozen = freezes([f[0] for f in window], seconds)
    return {
        "uplink_kbps": tbf["rate_kbit"],
        "tbf": tbf,
        "setting": setting,
        "join_to_first_frame_ms": round((first - joined) * 1000),
        "fps": round(len(window) / seconds, 1),
        "fps_by_second": [sum(1 for f in window if i <= f[0] < i + 1) for i in range(int(seconds))],
        "full_size_share": round(len(full) / len(window), 3) if window else 0,
        "frames_by_size": sizes,
        "freezes": len(frozen),
        "longest_freeze_ms": round(max(frozen, default=0)),
        "frozen_ms": round(sum(frozen)),
        "tbf_dropped_packets": net.dropped() - dropped,
        "browser_at_end": encoder,
    }


async def run(
    seconds: float, uplinks: list[int], mins: list[int], burst_kbit: int, latency_ms: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, browser_net(Path(tmp)) as net:
        y4m = write_y4m(
            HANDS / "victory_closeup_nails_3000x4000.jpg", Path(tmp) / "hand.y4m", WIDTH, HEIGHT
        )
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


def _dump(*_: object) -> None:
    for t in asyncio.all_tasks(asyncio.get_event_loop()):
        t.print_stack(file=sys.stderr)


def main() -> None:
    signal.signal(signal.SIGUSR1, _dump)
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--uplink-kbps", type=int, nargs="+", default=[800, 1500])
    parser.add_argument("--min", type=int, nargs="*", default=[300, 1000, 2000])
    parser.add_argument("--burst-kbit", type=int, default=32, help="tbf bucket (default 32)")
    parser.add_argument("--latency-ms", type=int, default=300, help="tbf queue (default 300)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up when stopped, too
    if os.geteuid() != 0 or not os.environ.get("CONSULT_ISOLATED"):
        sys.exit("bench_uplink: needs root and `unshare -n` (to shape a private veth pair)")
    results = asyncio.run(
        run(args.seconds, args.uplink_kbps, args.min, args.burst_kbit, args.latency_ms)
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
