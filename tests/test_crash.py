"""SIGKILL in the middle of a call loses nothing that was acknowledged, and leaves no half still."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

import aiohttp
import cv2
import pytest

from .client import CallClient
from .fake_camera import HANDS, load_photo
from .media import PhotoTrack
from .process import start_serve, wait_healthy

pytestmark = pytest.mark.timeout(120)


async def test_sigkill_mid_call_loses_nothing_acknowledged(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, data = served
    await wait_healthy(port)
    base = f"http://127.0.0.1:{port}"
    staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
    async with aiohttp.ClientSession(base_url=base) as http:
        async with http.post(
            "/api/consultations", json={"customer_name": "Jane"}, headers=staff
        ) as r:
            consultation = await r.json()
        token = consultation["customer_link"].rsplit("/", 1)[1]
        stylist_token = consultation["stylist_link"].rsplit("/", 1)[1]
        customer = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={token}", "customer")
        stylist = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={stylist_token}", "stylist")
        acked_stills: dict[str, str] = {}
        acked_chat: list[tuple[int, str]] = []
        try:
            await customer.connect()
            await customer.start_media(
                PhotoTrack(load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg"), 640, 480)
            )
            await stylist.connect()
            await stylist.start_media()
            await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
            for i in range(3):
                await customer.send({"type": "chat", "text": f"message {i}", "id": f"m{i}"})
                ack = await customer.expect("chat")
                acked_chat.append((ack["seq"], ack["text"]))
            await stylist.send({"type": "capture"})
            request = await customer.expect("capture-request")
            _ok, png = cv2.imencode(".png", load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg"))
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
            async with http.post(request["upload_url"], data=bytes(png), headers=headers) as r:
                assert r.status == 201
                camera = (await r.json())["still"]
            acked_stills[camera["id"]] = camera["sha256"]
            for _ in range(2):
                still = (await stylist.expect("still", timeout=15))["still"]
                acked_stills[still["id"]] = still["sha256"]

            # A second capture whose photo is cut off halfway when the server dies.
            await stylist.send({"type": "capture"})
            request = await customer.expect("capture-request")
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {request['upload_url']} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {len(png) * 2}\r\n\r\n".encode()
                + bytes(png)
            )
            await writer.drain()
            await asyncio.sleep(0.3)
            proc.kill()  # SIGKILL: no shutdown, no cleanup
            proc.wait()
            writer.close()
        finally:
            await customer.close()
            await stylist.close()

    # The second capture's stream still may or may not have been saved before the kill;
    # whatever exists must be whole.
    restarted = start_serve(data, port)
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=base) as http:
            async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
                record = await r.json()
            stills = {s["id"]: s for s in record["stills"]}
            for still_id, sha in acked_stills.items():
                assert stills[still_id]["sha256"] == sha
                async with http.get(f"/api/stills/{still_id}", headers=staff) as r:
                    assert hashlib.sha256(await r.read()).hexdigest() == sha  # byte-identical
            # The cut-off upload left no camera still for its capture.
            assert sum(1 for s in record["stills"] if s["source"] == "camera") == 1
            for still in record["stills"]:
                async with http.get(still["url"], headers=staff) as r:
                    assert hashlib.sha256(await r.read()).hexdigest() == still["sha256"]
            assert [(m["seq"], m["text"]) for m in record["messages"]] == acked_chat
            # The same links work.
            again = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={token}", "customer")
            welcome = await again.connect()
            assert [m["seq"] for m in welcome["history"] if m["type"] == "chat"] == [1, 2, 3]
            await again.close()
        # Nothing half-written anywhere: no staged file, no file without its row (each still
        # is its original and its thumbnail).
        stills_dir = data / "stills"
        files = [p.relative_to(stills_dir).as_posix() for p in stills_dir.rglob("*") if p.is_file()]
        assert not any(f.startswith(".staging/") for f in files)
        assert len(files) == 2 * len(record["stills"]), files
    finally:
        restarted.kill()
        restarted.wait()
