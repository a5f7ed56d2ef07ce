"""A customer's data for the privacy tests (issue 17B): a consultation filled with what the salon
keeps of them, through the real API (and a recording as the hub leaves one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiohttp.test_utils import TestServer

from consult.appkeys import RECORDINGS, STORE
from consult.recording.recordings import Recording

from .attachment_media import pdf
from .conftest import STAFF_KEY, token_of

__all__ = ["auth", "fill_consultation", "jpeg"]


def jpeg(shade: int) -> bytes:
    _ok, data = cv2.imencode(".jpg", np.full((120, 160, 3), shade, np.uint8))
    return bytes(data)


def auth(link: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_of(link)}"}


async def fill_consultation(
    http: aiohttp.ClientSession, server: TestServer, consultation: dict[str, Any], tag: str
) -> dict[str, Any]:
    """Everything a consultation keeps: the customer's chat (words, a photo, a file), the
    stylist's notes, a consent, a recording."""
    cid, customer = consultation["id"], auth(consultation["customer_link"])
    ws = await http.ws_connect(
        server.make_url("/ws/conversation").with_query(
            token=token_of(consultation["customer_link"])
        )
    )
    assert (await ws.receive_json())["type"] == "conversation"
    await ws.send_json({"type": "chat", "text": f"Hello, it is {tag}", "id": f"w-{tag}"})
    while (await ws.receive_json())["type"] != "chat":
        pass
    await ws.close()
    async with http.post(
        f"/api/consultations/{cid}/chat-photos",
        params={"id": f"p-{tag}"},
        data=jpeg(90),
        headers=customer | {"Content-Type": "image/jpeg"},
    ) as r:
        assert r.status == 201, await r.text()
        photo = (await r.json())["message"]
    async with http.post(
        f"/api/consultations/{cid}/attachments",
        params={"kind": "file", "id": f"f-{tag}", "name": f"{tag}.pdf"},
        data=pdf(),
        headers=customer,
    ) as r:
        assert r.status == 201, await r.text()
    async with http.put(
        f"/api/consultations/{cid}/notes",
        json={"notes": f"{tag} likes almond shapes", "summary": f"Almond for {tag}"},
        headers={"Authorization": f"Bearer {STAFF_KEY}"},
    ) as r:
        assert r.status == 200
    async with http.get(f"/api/consultations/{cid}/consent", headers=customer) as r:
        version = (await r.json())["version"]
    async with http.post(
        f"/api/consultations/{cid}/consent", json={"version": version}, headers=customer
    ) as r:
        assert r.status == 201, await r.text()
    files, rows = server.app[RECORDINGS], server.app[STORE].recordings
    started = datetime.now(UTC)
    recording = Recording(f"rec{tag}".ljust(24, "0"), cid, "customer", "s" * 24, "recording",
                          started, "")  # fmt: skip
    await rows.begin(recording)
    files.prepare()
    files.staged(recording.id).write_bytes(b"\x1a\x45\xdf\xa3" + bytes(1000))
    await rows.complete(recording.id, files.place(recording.id, cid, "webm", 1.0), started)
    return {"photo": photo}
