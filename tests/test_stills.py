"""Stills through the real server: camera photos uploaded, best-of-burst from the stream."""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from consult.app import create_app
from consult.config import Settings
from consult.media.quality import laplacian_variance

from .calls import in_call_with, png, upload
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of
from .fake_camera import HANDS, load_photo
from .hand_media import VIDEOS, labelled, read_frames
from .media import ClipTrack, PhotoTrack

pytestmark = pytest.mark.timeout(90)

MAX_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4_000_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Small limits, so the limit tests need no large uploads.
    return make_settings(tmp_path, max_upload_bytes=MAX_BYTES, max_upload_pixels=MAX_PIXELS)


@pytest.fixture
def photo() -> np.ndarray:
    return load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg")


def stored_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.stills_dir.rglob("*") if p.is_file())


async def test_a_capture_gives_the_camera_photo_bit_identical_and_the_best_stream_frame(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, photo: np.ndarray
) -> None:
    track = PhotoTrack(photo, 640, 480, sharp_every=6)
    customer, stylist = await in_call_with(clients, consultation, track)
    token = token_of(consultation["customer_link"])

    await stylist.send({"type": "capture"})
    request = await customer.expect("capture-request")
    assert request["upload_url"].startswith(f"/api/consultations/{consultation['id']}/stills")
    original = png(track.sharp)  # the camera's photo at its own size
    status, body = await upload(http, request["upload_url"], token, original)
    assert status == 201, body
    camera = body["still"]
    assert (camera["source"], camera["width"], camera["height"]) == ("camera", 640, 480)
    assert camera["capture_id"] == request["capture_id"]
    assert camera["sha256"] == hashlib.sha256(original).hexdigest()

    # Both sides hear of both stills, under the same capture.
    seen: dict[str, dict[str, Any]] = {}
    for client in (customer, stylist):
        for _ in range(2):
            still = (await client.expect("still", timeout=15))["still"]
            assert still["capture_id"] == request["capture_id"]
            seen[still["source"]] = still
    stream = seen["video"]
    assert (stream["width"], stream["height"]) == (640, 480)  # what the server received

    async with http.get(camera["url"], params={"token": token}) as r:
        assert r.status == 200
        assert r.content_type == "image/png"
        assert await r.read() == original  # byte for byte
    async with http.get(stream["url"], params={"token": token}) as r:
        data = await r.read()
    assert hashlib.sha256(data).hexdigest() == stream["sha256"]
    still = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    sharp = laplacian_variance(cv2.cvtColor(track.sharp, cv2.COLOR_BGR2GRAY))
    blurred = laplacian_variance(cv2.cvtColor(track.blurred, cv2.COLOR_BGR2GRAY))
    # Five of six frames are blurred; the burst keeps a sharp one.
    assert laplacian_variance(still) > (sharp + blurred) / 2, (laplacian_variance(still), sharp)
    async with http.get(stream["thumb_url"], params={"token": token}) as r:
        assert r.status == 200 and r.content_type == "image/jpeg"

    # The record lists them, newest first, for staff and participants.
    async with http.get(f"/api/consultations/{consultation['id']}", params={"token": token}) as r:
        record = await r.json()
    assert {s["id"] for s in record["stills"]} == {camera["id"], stream["id"]}


async def test_the_customer_can_send_a_photo_on_their_own(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, photo: np.ndarray
) -> None:
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 640, 480))
    await customer.send({"type": "capture"})
    request = await customer.expect("capture-request")
    status, _ = await upload(
        http, request["upload_url"], token_of(consultation["customer_link"]), png(photo)
    )
    assert status == 201
    sources = {(await stylist.expect("still", timeout=15))["still"]["source"] for _ in range(2)}
    assert sources == {"camera", "video"}


async def test_capture_without_the_customer_is_an_error(
    clients: Any, consultation: dict[str, Any]
) -> None:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    await stylist.send({"type": "capture"})
    assert (await stylist.expect("error"))["code"] == "no-customer"


async def test_concurrent_captures_each_get_their_stills(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, photo: np.ndarray
) -> None:
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 640, 480))
    token = token_of(consultation["customer_link"])
    await stylist.send({"type": "capture"})
    await stylist.send({"type": "capture"})
    requests = [await customer.expect("capture-request") for _ in range(2)]
    assert requests[0]["capture_id"] != requests[1]["capture_id"]
    images = [png(photo), png(cv2.flip(photo, 1))]
    results = await asyncio.gather(
        *(
            upload(http, r["upload_url"], token, img)
            for r, img in zip(requests, images, strict=True)
        )
    )
    assert [status for status, _ in results] == [201, 201]
    stills = [(await stylist.expect("still", timeout=15))["still"] for _ in range(4)]
    by_capture = {(s["capture_id"], s["source"]) for s in stills}
    assert len(by_capture) == 4
    # A capture takes one camera photo.
    status, body = await upload(http, requests[0]["upload_url"], token, png(photo))
    assert (status, body["error"]["code"]) == (409, "already-uploaded")


@pytest.fixture
async def capture_url(
    http: aiohttp.ClientSession, clients: Any, consultation: dict[str, Any], photo: np.ndarray
) -> str:
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 320, 240))
    await stylist.send({"type": "capture"})
    request = await customer.expect("capture-request")
    await stylist.expect("still", timeout=15)  # the stream still; the camera still is ours
    return str(request["upload_url"])


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG whose header says width x height, small on the wire (all zeros)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    raw = zlib.compress(b"\x00" * ((width + 1) * height), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("body", "kind", "status", "code"),
    [
        (b"GIF89a" + b"\x00" * 100, "image/png", 415, "unsupported-media"),
        (b"hello", "text/plain", 415, "unsupported-media"),
        (b"", "image/png", 400, "corrupt-image"),
        ("truncated", "image/png", 400, "corrupt-image"),
        ("garbled", "image/jpeg", 400, "corrupt-image"),
        ("too-big", "image/png", 413, "too-large"),
        ("too-many-pixels", "image/png", 413, "too-many-pixels"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    http: aiohttp.ClientSession,
    capture_url: str,
    consultation: dict[str, Any],
    settings: Settings,
    photo: np.ndarray,
    body: bytes | str,
    kind: str,
    status: int,
    code: str,
) -> None:
    before = stored_files(settings)
    good = png(photo)
    if body == "truncated":
        body = good[: len(good) // 2]
    elif body == "garbled":
        _ok, jpeg = cv2.imencode(".jpg", photo)
        body = bytes(jpeg[:200]) + b"\x00" * 2000 + bytes(jpeg[2200:4000])
    elif body == "too-big":
        body = b"\x89PNG" + b"\x00" * (MAX_BYTES + 10)
    elif body == "too-many-pixels":
        body = huge_png(2500, 2000)  # 5 MP, > 4 MP
    assert isinstance(body, bytes)
    got, answer = await upload(
        http, capture_url, token_of(consultation["customer_link"]), body, kind
    )
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"]
    assert stored_files(settings) == before
    # The capture can still get its photo.
    got, _ = await upload(http, capture_url, token_of(consultation["customer_link"]), good)
    assert got == 201


async def test_uploads_need_the_right_consultation_and_role(
    http: aiohttp.ClientSession,
    capture_url: str,
    consultation: dict[str, Any],
    staff: dict[str, str],
    photo: np.ndarray,
    settings: Settings,
) -> None:
    before = stored_files(settings)
    other = await create_consultation(http, staff, customer_name="Other")
    customer = token_of(consultation["customer_link"])
    capture = capture_url.split("capture=")[1]
    cases = [
        # another consultation's customer, to this consultation
        (capture_url, token_of(other["customer_link"]), 403, "forbidden"),
        # this customer, naming this capture under another consultation
        (f"/api/consultations/{other['id']}/stills?capture={capture}", customer, 403, "forbidden"),
        # the other consultation's customer, naming our capture under their consultation
        (f"/api/consultations/{other['id']}/stills?capture={capture}",
         token_of(other["customer_link"]), 404, "unknown-capture"),
        (capture_url, token_of(consultation["stylist_link"]), 403, "forbidden"),
        (capture_url, "not-a-token", 401, "invalid-token"),
        (capture_url.split("?")[0], customer, 400, "invalid-request"),
        (capture_url.split("?")[0] + "?capture=nope", customer, 404, "unknown-capture"),
    ]  # fmt: skip
    for url, token, status, code in cases:
        got, body = await upload(http, url, token, png(photo))
        assert (got, body["error"]["code"]) == (status, code), url
    assert stored_files(settings) == before
    got, _ = await upload(http, capture_url, STAFF_KEY, png(photo))  # staff may
    assert got == 201


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(
    server: Any, capture_url: str, consultation: dict[str, Any], settings: Settings
) -> None:
    before = stored_files(settings)
    host, port = server.host, server.port
    _reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"POST {capture_url} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token_of(consultation['customer_link'])}\r\n"
            f"Content-Type: image/png\r\nContent-Length: 1000000\r\n\r\n"
        ).encode()
        + b"\x89PNG\r\n\x1a\n"
        + b"\x00" * 300_000
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.transport.abort()
    for _ in range(50):
        staged = list((settings.stills_dir / ".staging").iterdir())
        if not staged:
            break
        await asyncio.sleep(0.1)
    assert staged == []
    assert stored_files(settings) == before


async def test_stills_are_private_to_their_consultation(
    http: aiohttp.ClientSession,
    clients: Any,
    consultation: dict[str, Any],
    staff: dict[str, str],
    photo: np.ndarray,
) -> None:
    _customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 320, 240))
    await stylist.send({"type": "capture"})
    still = (await stylist.expect("still", timeout=15))["still"]
    other = await create_consultation(http, staff, customer_name="Other")
    for url in (still["url"], still["thumb_url"]):
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, params={"token": token_of(other["customer_link"])}) as r:
            assert r.status == 403
        async with http.get(url, params={"token": token_of(consultation["stylist_link"])}) as r:
            assert r.status == 200
        async with http.get(url, headers=staff) as r:
            assert r.status == 200
    async with http.get(still["url"], headers=staff, params={"download": "1"}) as r:
        assert r.headers["Content-Disposition"].startswith("attachment;")
    async with http.get("/api/stills/does-not-exist", headers=staff) as r:
        assert r.status == 404


async def test_a_capture_counts_down_repeats_the_retake_cue_and_records_the_video_size(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, photo: np.ndarray,
    settings: Settings,
) -> None:  # fmt: skip
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 640, 480))
    token = token_of(consultation["customer_link"])
    await stylist.send({"type": "capture", "cue": ["more-light", "hold-still"]})
    request = await customer.expect("capture-request")
    assert request["countdown_ms"] == round(settings.capture_countdown * 1000) > 0
    # The photo never before the countdown's end, nor before the video still's burst.
    assert request["photo_in_ms"] == max(request["countdown_ms"], 800)
    assert request["cue"] == ["more-light", "hold-still"]
    assert request["window_s"] == round(settings.native_photo_window)
    started = await stylist.expect("capture-started")
    assert started == {
        "type": "capture-started", "capture_id": request["capture_id"],
        "countdown_ms": request["countdown_ms"], "by": "stylist",
    }  # fmt: skip
    # The camera's photo is larger than the video it was taken during.
    large = cv2.resize(photo, (1280, 1040))
    status, body = await upload(http, f"{request['upload_url']}&video=640x480", token, png(large))
    assert status == 201, body
    camera = body["still"]
    assert (camera["width"], camera["height"]) == (1280, 1040)
    assert (camera["video_width"], camera["video_height"]) == (640, 480)
    video = next(
        s for s in [(await stylist.expect("still", timeout=15))["still"] for _ in range(2)]
        if s["source"] == "video"
    )  # fmt: skip
    assert (video["video_width"], video["video_height"]) == (640, 480)
    # v1's "countdown": false is accepted, and the customer counts down all the same: no still
    # is taken without the countdown on the customer's screen.
    await stylist.send({"type": "capture", "countdown": False})
    request = await customer.expect("capture-request")
    assert request["countdown_ms"] == round(settings.capture_countdown * 1000) > 0
    assert request["photo_in_ms"] == max(request["countdown_ms"], 800)
    status, body = await upload(http, f"{request['upload_url']}&video=wide", token, png(photo))
    assert (status, body["error"]["code"]) == (400, "invalid-request")


async def test_the_native_photo_path_stores_the_device_cameras_photo_byte_for_byte(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, photo: np.ndarray,
    settings: Settings,
) -> None:  # fmt: skip
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 640, 480))
    token = token_of(consultation["customer_link"])
    await stylist.send({"type": "capture", "countdown": False})
    request = await customer.expect("capture-request")
    native = f"{request['upload_url']}&source=native&video=640x480"
    # A camera app's JPEG, named loosely by the browser (this module's limits are small).
    original = (HANDS / "thumbs_down_brown_skin_427x640.jpg").read_bytes()
    # An iPhone's HEIC is refused with its own message, and leaves nothing (not even staged:
    # what else is stored meanwhile, the capture's video still, comes when it comes).
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    for kind in ("image/heic", "application/octet-stream"):
        status, body = await upload(http, native, token, heic, kind)
        assert (status, body["error"]["code"]) == (415, "heic-unsupported"), body
        assert "Most Compatible" in body["error"]["message"]
    assert not [p for p in stored_files(settings) if p.read_bytes().startswith(heic[:20])]
    status, body = await upload(http, native, token, original, "application/octet-stream")
    assert status == 201, body
    still = body["still"]
    assert (still["source"], still["media_type"]) == ("native", "image/jpeg")
    assert (still["width"], still["height"]) == (427, 640)
    assert (still["video_width"], still["video_height"]) == (640, 480)
    async with http.get(still["url"], params={"token": token}) as r:
        assert await r.read() == original
    sources = {(await stylist.expect("still", timeout=15))["still"]["source"] for _ in range(2)}
    assert sources == {"native", "video"}
    # One native photo a capture; the camera path is separate.
    status, body = await upload(http, native, token, original, "image/jpeg")
    assert (status, body["error"]["code"]) == (409, "already-uploaded")
    status, body = await upload(http, f"{request['upload_url']}&source=screen", token, original)
    assert (status, body["error"]["code"]) == (400, "invalid-request")


async def test_a_native_photo_after_the_capture_window_is_refused(
    http: aiohttp.ClientSession, photo: np.ndarray, tmp_path: Path, aiohttp_server: Any,
    staff: dict[str, str],
) -> None:  # fmt: skip
    server = await aiohttp_server(create_app(make_settings(tmp_path, native_photo_window=0.3)))
    made: list[CallClient] = []

    def clients(role: str, link: str) -> CallClient:
        url = str(server.make_url("/ws").with_query(token=token_of(link)))
        made.append(CallClient(session, url, role))
        return made[-1]

    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as session:
        consultation = await create_consultation(session, staff)
        try:
            customer, stylist = await in_call_with(
                clients, consultation, PhotoTrack(photo, 320, 240)
            )
            await stylist.send({"type": "capture", "countdown": False})
            request = await customer.expect("capture-request")
            # The video's best frame stands for the capture.
            assert (await stylist.expect("still", timeout=15))["still"]["source"] == "video"
            await asyncio.sleep(0.4)
            status, body = await upload(
                session, f"{request['upload_url']}&source=native",
                token_of(consultation["customer_link"]), png(photo),
            )  # fmt: skip
            assert (status, body["error"]["code"]) == (409, "capture-closed")
        finally:
            for client in made:
                await client.close()


async def test_stream_stills_of_a_real_hand_video_get_the_verdict_of_the_hand(
    clients: Any, consultation: dict[str, Any]
) -> None:
    # Issue 12: a real video (the hand in focus before a softly blurred background) had every
    # stream still called blurred. Frames labelled sharp, then soft (videos/SOURCES.md).
    name = "open_palm_focus_pull_640x360.mp4"
    sharp, soft = labelled(name, "sharp"), labelled(name, "soft")
    frames = read_frames(VIDEOS / name, set(sharp + soft))
    track = ClipTrack([frames[i] for i in sharp])
    customer, stylist = await in_call_with(clients, consultation, track)
    verdicts = []
    for clip in (sharp, soft):
        track.frames, track.number = [frames[i] for i in clip], 0
        await asyncio.sleep(1)  # the clip's frames through the encoder before the burst
        await stylist.send({"type": "capture", "countdown": False})
        await customer.expect("capture-request")  # not answered: the video still stands
        still = (await stylist.expect("still", timeout=15))["still"]
        verdicts.append((still["flags"], still["hints"]))
    assert verdicts == [([], []), (["blur"], ["hold-still"])], verdicts


async def test_a_chat_photo_for_a_consultation_that_does_not_exist_is_not_found(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    async with http.post(
        "/api/consultations/0/chat-photos",
        params={"id": "0"},
        data=b"",
        headers={**staff, "Content-Type": "image/png"},
    ) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not-found"
