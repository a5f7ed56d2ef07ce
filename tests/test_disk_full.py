"""A full disk during captures: a clear error for whoever captured, a consistent store, and a
server that goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from .client import CallClient
from .media import PhotoTrack
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(120)


async def test_a_full_disk_refuses_stills_cleanly(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = start_serve(data, port, stills_disk="3m")
    try:
        await wait_healthy(port)
        staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.post(
                "/api/consultations", json={"customer_name": "Jane"}, headers=staff
            ) as r:
                consultation = await r.json()
            token = consultation["customer_link"].rsplit("/", 1)[1]
            stylist_token = consultation["stylist_link"].rsplit("/", 1)[1]
            customer = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={token}", "customer")
            stylist = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={stylist_token}", "stylist")
            try:
                await customer.connect()
                # Noise does not compress: each still, uploaded or from the video, is ~1 MB.
                noise = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
                await customer.start_media(PhotoTrack(noise, 640, 480))
                await stylist.connect()
                await stylist.start_media()
                await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
                # Noise does not compress: each upload is about 1 MB.
                noise = np.random.default_rng(1).integers(0, 255, (600, 600, 3), np.uint8)
                _ok, png = cv2.imencode(".png", noise)
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
                statuses = []
                for _ in range(5):
                    await stylist.send({"type": "capture"})
                    request = await customer.expect("capture-request")
                    async with http.post(
                        request["upload_url"], data=bytes(png), headers=headers
                    ) as r:
                        statuses.append((r.status, (await r.json()).get("error", {}).get("code")))
                    if r.status == 507:
                        break
                assert statuses[0][0] == 201
                assert statuses[-1] == (507, "storage-failed"), statuses
                # The stylist hears it too, once a stream still cannot be saved either.
                for _ in range(5):
                    await stylist.send({"type": "capture"})
                    reply = await stylist.expect_any(("still", "error"), timeout=20)
                    if reply["type"] == "error":
                        assert reply["code"] == "storage-failed"
                        break
                else:
                    raise AssertionError("the stream stills kept being saved on a full disk")
                await asyncio.sleep(2)  # let stills still being written settle
                async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
                    record = await r.json()
                # Consistent: every row has its files, nothing staged, nothing extra.
                # (the tmpfs is mounted in the server's namespace: look through its root)
                stills_dir = Path(f"/proc/{proc.pid}/root") / (data / "stills").relative_to("/")
                files = [p for p in stills_dir.rglob("*") if p.is_file()]
                assert not [p for p in files if ".staging" in p.parts]
                names = sorted(p.name.split(".")[0] for p in files)
                rows = sorted(s["id"] for s in record["stills"])
                assert names == sorted(rows * 2), (names, rows)
                assert len(record["stills"]) >= 2
                for still in record["stills"]:
                    async with http.get(still["url"], headers=staff) as r:
                        assert r.status == 200
                # The call and the chat go on.
                await customer.send({"type": "chat", "text": "still there?", "id": "x"})
                assert (await stylist.expect("chat"))["text"] == "still there?"
            finally:
                await customer.close()
                await stylist.close()
    finally:
        proc.kill()
        proc.wait()
