"""Two nodes in two network namespaces joined by a veth pair, one PostgreSQL (on its Unix
socket, which every namespace reaches), Chromium pages: the customer through node a, the
stylist through node b, each through an entry that falls back to the other node (a balancer
process in each namespace). A still uploaded through node b shows on the pages of the call
node a owns; node a killed, both pages reconnect by themselves and their media flows again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from playwright.async_api import Page, expect

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer

from .browser import CHROMIUM, LAPTOP, PHONE, Launch, open_page, ready_to_join, screenshot
from .namespace import Namespace
from .postgres import Postgres
from .turn import require_isolated

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).parent.parent
STAFF_KEY = "two-namespaces-staff-key-0123456789"
#: Each node on its side of the link; its port, and its entry's (the balancer's).
ADDRESSES = {"node-a": "10.78.0.1", "node-b": "10.78.0.2"}
NODE_PORT, ENTRY_PORT = 8101, 8201
#: The issue's bound: a call whose node died has its media back within this long.
FAILOVER_S = 10.0

# Frames of the partner's camera (720p; the waiting card is 640 wide) the page has shown.
COUNT_FRAMES = """
window.__frames = [];
document.addEventListener("DOMContentLoaded", () => {
  const v = document.querySelector("[data-testid=remote-video]");
  if (!v) return;
  const onFrame = (now, meta) => {
    if (meta.width > 640) window.__frames.push(now);
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
});
"""


class Output:
    """A process's output lines, read as they come (``wait_for`` a line)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()

    async def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never said {text!r}:\n{''.join(self.lines[-40:])}")
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def namespaces() -> Iterator[dict[str, Namespace]]:
    require_isolated()
    made = {name: Namespace() for name in ADDRESSES}
    a, b = made["node-a"], made["node-b"]
    try:
        # Made in place: the link never appears in the suite's own namespace.
        subprocess.run(
            ["ip", "link", "add", "cna", "netns", str(a.pid), "type", "veth",
             "peer", "name", "cnb", "netns", str(b.pid)],
            check=True, capture_output=True,
        )  # fmt: skip
        for (name, space), device in zip(made.items(), ("cna", "cnb"), strict=True):
            space.run(f"ip link set lo up && ip addr add {ADDRESSES[name]}/24 dev {device}"
                      f" && ip link set {device} up")  # fmt: skip
        yield made
    finally:
        for space in made.values():
            space.close()  # the link goes with its namespaces


def start_node(
    space: Namespace, name: str, data: Path, database_url: str, seal_key: bytes
) -> Output:
    data.mkdir(parents=True, exist_ok=True)
    (data / "link-seal.key").write_bytes(seal_key)
    address = ADDRESSES[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env |= {"CONSULT_DATABASE_URL": database_url, "CONSULT_STAFF_KEY": STAFF_KEY,
            "CONSULT_NODE_ID": name}  # fmt: skip
    # One process per node (no workers): the node's id is the call owner's.
    command = [sys.executable, "-m", "consult", "serve", "--host", address,
               "--port", str(NODE_PORT), "--data", str(data), "--media-address", address,
               "--node-url", f"http://{address}:{NODE_PORT}",
               "--workers", "1"]  # fmt: skip
    proc = space.popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env)  # fmt: skip
    return Output(proc)


def start_entry(space: Namespace, name: str) -> Output:
    """The balancer in front of ``name``: that node first, the other one if it is down."""
    other = next(n for n in ADDRESSES if n != name)
    backends = [f"{ADDRESSES[n]}:{NODE_PORT}" for n in (name, other)]
    command = [sys.executable, "-m", "tests.balancer", ADDRESSES[name], str(ENTRY_PORT),
               *backends]  # fmt: skip
    proc = space.popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       cwd=ROOT)  # fmt: skip
    return Output(proc)


async def wait_for_frames(page: Page, since: float, timeout_s: float) -> None:
    await page.wait_for_function(
        "(t) => window.__frames.filter((f) => f > t).length >= 10",
        arg=since,
        timeout=max(timeout_s, 0.1) * 1000,
    )


async def test_two_nodes_in_two_namespaces(
    namespaces: dict[str, Namespace], postgres: Postgres, launch: Launch, tmp_path: Path
) -> None:
    database_url = postgres.create_database()
    seal_key = Fernet.generate_key()
    processes: list[Output] = []
    store = None
    try:
        for name in ("node-a", "node-b"):  # a first: the schema is made once
            node = start_node(namespaces[name], name, tmp_path / name, database_url, seal_key)
            processes.append(node)
            await node.wait_for("consult is serving")
        node_a = processes[0]
        for name in ADDRESSES:
            entry = start_entry(namespaces[name], name)
            processes.append(entry)
            await entry.wait_for("listening")

        store = await Store.open(database_url, TokenSealer(seal_key), node="test")
        consultation, links = await store.create_consultation(
            customer_name="Jane", link_ttl=timedelta(days=1)
        )
        customer_url = f"http://{ADDRESSES['node-a']}:{ENTRY_PORT}/c/{links.customer}"
        stylist_url = f"http://{ADDRESSES['node-b']}:{ENTRY_PORT}/s/{links.stylist}"
        # Both browsers in node a's namespace: the stylist's entry is across the link.
        wrapper = namespaces["node-a"].wrapper(tmp_path / "chromium", CHROMIUM)
        origins = ",".join(f"http://{a}:{ENTRY_PORT}" for a in ADDRESSES.values())
        args = [f"--unsafely-treat-insecure-origin-as-secure={origins}"]
        customer_browser = await launch(executable=str(wrapper), args=args)
        stylist_browser = await launch(executable=str(wrapper), args=args)
        counting = tmp_path / "count-frames.js"
        counting.write_text(COUNT_FRAMES)
        customer = await open_page(customer_browser, customer_url, PHONE, scripts=(counting,))
        await ready_to_join(customer)
        await customer.get_by_test_id("join").click()
        # The customer is first, through node a: the call is node a's.
        for _ in range(100):
            owner = await store.call_owners.get(consultation.id)
            if owner is not None and owner.node_id is not None:
                break
            await asyncio.sleep(0.1)
        assert owner is not None and owner.node_id == "node-a"
        taken = owner.epoch
        stylist = await open_page(stylist_browser, stylist_url, LAPTOP, scripts=(counting,))
        await ready_to_join(stylist)
        await stylist.get_by_test_id("join").click()
        # Media both ways: each page shows the other's camera.
        await wait_for_frames(customer, 0, 30)
        await wait_for_frames(stylist, 0, 30)

        # A photo sent by the stylist through node b: node a's call shows it on both pages.
        sent: dict[str, Any] = await stylist.evaluate(
            """async ([id, token]) => {
                const canvas = new OffscreenCanvas(320, 240);
                const ctx = canvas.getContext("2d");
                ctx.fillStyle = "#c3161c"; ctx.fillRect(0, 0, 320, 240);
                const blob = await canvas.convertToBlob({type: "image/png"});
                const r = await fetch(`/api/consultations/${id}/chat-photos?id=from-b`, {
                    method: "POST", body: blob,
                    headers: {"Content-Type": "image/png", Authorization: `Bearer ${token}`}});
                return {status: r.status, body: await r.json()};
            }""",
            [consultation.id, links.stylist],
        )
        assert sent["status"] == 201, sent
        await expect(customer.get_by_test_id("photo-notice")).to_be_visible(timeout=15_000)
        await expect(stylist.locator("[data-testid=still][data-source=chat]")).to_have_count(1)
        await screenshot(customer, "two-namespaces-customer-still-from-b")

        # Node a (the owner) killed: both pages reconnect by themselves, through node b.
        node_a.proc.kill()
        killed = time.monotonic()
        marks = [await page.evaluate("performance.now()") for page in (customer, stylist)]
        for page, mark in zip((customer, stylist), marks, strict=True):
            await wait_for_frames(page, mark + 200, killed + FAILOVER_S - time.monotonic())
        back = time.monotonic() - killed
        print(f"\ntwo namespaces: both pages' media back {back:.2f} s after node a was killed")
        assert back < FAILOVER_S
        owner = await store.call_owners.get(consultation.id)
        assert owner is not None and owner.node_id == "node-b" and owner.epoch > taken
        for page in (customer, stylist):
            assert not page.errors, page.errors  # type: ignore[attr-defined]
        await screenshot(stylist, "two-namespaces-stylist-after-failover")
        await customer_browser.close()
        await stylist_browser.close()
    finally:
        if store is not None:
            await store.close()
        for output in processes:
            if output.proc.poll() is None:
                output.proc.kill()
            output.proc.wait()
