"""Recording a call through the real server, with real aiortc peers: consent, the files as
PyAV decodes them (frames, lip sync, duration), the API, a refusal, a SIGKILL and a full disk."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from consult.appkeys import SETTINGS

from .calls import agree_both
from .client import CallClient
from .media import BEEP_EVERY, BeepTrack, ClockedPattern, beep_onsets, decode_pattern, loudness
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(180)

RECORD_SECONDS = 8.0


def pair(clients: Any, consultation: dict[str, Any]) -> tuple[CallClient, CallClient]:
    """The customer's and the stylist's clients of ``consultation``."""
    return clients("customer", consultation["customer_link"]), clients(
        "stylist", consultation["stylist_link"]
    )


async def clocked_call(
    customer: CallClient, stylist: CallClient
) -> tuple[ClockedPattern, ClockedPattern]:
    """Both in the call, each sending video and beeps on one clock of its own."""
    epoch = time.monotonic() + 0.2
    videos = (ClockedPattern(1, epoch), ClockedPattern(2, epoch + 0.37))
    await customer.connect()
    await customer.start_media(videos[0], audio=BeepTrack(epoch))
    await stylist.connect()
    await stylist.start_media(videos[1], audio=BeepTrack(epoch + 0.37))
    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 5)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 5)
    return videos


def decode(path: Path) -> tuple[list[tuple[float, int]], list[float], float]:
    """The file's video frames as (time, frame number), beep onsets, and its duration."""
    video: list[tuple[float, int]] = []
    levels: list[tuple[float, float]] = []
    end = 0.0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            stamp = decode_pattern(frame)
            if stamp is not None and frame.time is not None:
                video.append((frame.time, stamp[1]))
                end = max(end, frame.time)
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            levels += loudness(frame)
            end = max(end, float(frame.time or 0.0) + frame.samples / frame.sample_rate)
    return video, beep_onsets(levels), end


def lip_sync_offset(video: list[tuple[float, int]], onsets: list[float]) -> float:
    """Audio minus video, seconds: where the beeps are against where the frames say they
    should be (frame 30k and beep k were captured together)."""
    epoch = float(np.median([t - n / 30 for t, n in video]))
    residuals = [((t - epoch + BEEP_EVERY / 2) % BEEP_EVERY) - BEEP_EVERY / 2 for t in onsets]
    return float(np.median(residuals))


async def test_a_recorded_call_plays_back_frame_for_frame_in_sync(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    tmp_path: Path,
) -> None:
    customer, stylist = pair(clients, consultation)
    videos = await clocked_call(customer, stylist)
    await agree_both(customer, stylist)
    started = time.monotonic()
    sent_from = {role: v.number for role, v in zip(("customer", "stylist"), videos, strict=True)}
    await asyncio.sleep(RECORD_SECONDS)
    # From "on" to the request to stop (the files are finished before "off" is sent).
    recorded = time.monotonic() - started
    sent_to = {role: v.number for role, v in zip(("customer", "stylist"), videos, strict=True)}
    await customer.send({"type": "record", "action": "stop"})
    for client in (customer, stylist):
        off = await client.expect("recording")
        assert (off["state"], off["reason"], off["by"]) == ("off", "stopped", "customer")

    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        record = await r.json()
    recordings = {r["role"]: r for r in record["recordings"]}
    assert set(recordings) == {"customer", "stylist"}
    assert len({r["session"] for r in recordings.values()}) == 1
    for role, entry in recordings.items():
        assert entry["media_type"] == "video/webm"
        async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "video/webm"
            body = await r.read()
        assert len(body) == entry["bytes"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        async with http.get(
            f"/api/recordings/{entry['id']}", headers=staff | {"Range": "bytes=100-199"}
        ) as r:
            assert r.status == 206
            assert await r.read() == body[100:200]
        path = tmp_path / f"{role}.webm"
        path.write_bytes(body)
        video, onsets, duration = decode(path)
        numbers = [n for _, n in video]
        assert numbers == sorted(numbers), f"{role}: frames out of order"
        # From its first key frame to the stop, every frame sent is there but for 2 %.
        span = numbers[-1] - numbers[0] + 1
        assert len(set(numbers)) >= 0.98 * span, (role, len(set(numbers)), span)
        # It covers the time between "on" and "off" to within a second (frames on their way,
        # the first key frame).
        assert numbers[0] - sent_from[role] <= 30, "the recording started late"
        assert sent_to[role] - numbers[-1] <= 30, "the recording ended early"
        assert abs(duration - recorded) <= 1.0, (role, duration, recorded)
        assert abs(entry["duration_s"] - recorded) <= 1.0
        assert len(onsets) >= RECORD_SECONDS - 2
        offset = lip_sync_offset(video, onsets)
        print(f"{role}: {len(set(numbers))}/{span} frames, A/V {offset * 1000:+.0f} ms, "
              f"{duration:.2f} s of {recorded:.2f} s")  # fmt: skip
        assert abs(offset) <= 0.080, f"{role}: audio {offset * 1000:.0f} ms off the video"

    # The customer's own link reads the record's recordings and their files too.
    token = consultation["customer_link"].rsplit("/", 1)[1]
    entry = recordings["stylist"]
    async with http.get(f"/api/recordings/{entry['id']}?token={token}") as r:
        assert r.status == 200
    async with http.get(f"/api/consultations/{consultation['id']}/export", headers=staff) as r:
        archive = tmp_path / "export.zip"
        archive.write_bytes(await r.read())
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        assert f"recordings/{entry['id']}.webm" in names
        assert (
            hashlib.sha256(z.read(f"recordings/{entry['id']}.webm")).hexdigest()
            == (entry["sha256"])
        )


async def test_consent_refused_by_one_side_writes_nothing(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    settings: Any,
) -> None:
    customer, stylist = pair(clients, consultation)
    await customer.connect()
    # Asking alone: nobody to agree with.
    await customer.send({"type": "record", "action": "ask"})
    assert (await customer.expect("error"))["code"] == "recording-unavailable"
    await customer.start_media()
    await stylist.connect()
    await stylist.start_media()
    await customer.send({"type": "record", "action": "ask"})
    await customer.send({"type": "record", "action": "agree"})
    for client in (customer, stylist):
        while (await client.expect("recording"))["agreed"] != ["customer"]:
            pass
    await stylist.send({"type": "record", "action": "refuse"})
    for client in (customer, stylist):
        off = await client.expect("recording")
        assert (off["state"], off["reason"], off["by"]) == ("off", "refused", "stylist")
    # An agreement after the refusal starts nothing.
    await customer.send({"type": "record", "action": "agree"})
    await customer.send({"type": "chat", "text": "ok", "id": "1"})
    await customer.expect("chat")
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        assert (await r.json())["recordings"] == []
    folder = settings.recordings_dir
    assert not [p for p in folder.rglob("*") if p.is_file()]


async def test_leaving_stops_the_recording_and_keeps_the_file(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    server: Any,
) -> None:
    customer, stylist = pair(clients, consultation)
    await clocked_call(customer, stylist)
    await agree_both(customer, stylist)
    await asyncio.sleep(2)
    await customer.send({"type": "bye"})
    off = await stylist.expect("recording")
    assert (off["state"], off["reason"], off["by"]) == ("off", "left", "customer")
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        recordings = (await r.json())["recordings"]
    assert len(recordings) == 2
    assert all(1.0 <= r["duration_s"] <= 3.5 for r in recordings), recordings
    # One file kept on another node's storage (or not restored from a backup): its row is
    # shared, the file is not here. A clear 404, and the export carries the rest.
    gone, kept = recordings
    next(server.app[SETTINGS].recordings_dir.glob(f"*/{gone['id']}.*")).unlink()
    async with http.get(f"/api/recordings/{gone['id']}", headers=staff) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not-found"
    async with http.get(f"/api/consultations/{consultation['id']}/export", headers=staff) as r:
        assert r.status == 200
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    listed = {r["id"]: r for r in json.loads(archive.read("record.json"))["recordings"]}
    assert listed[gone["id"]]["missing"] is True
    assert archive.read(listed[kept["id"]]["file"])


async def serve_call(
    http: aiohttp.ClientSession, port: int, data: Path
) -> tuple[dict[str, str], dict[str, Any], CallClient, CallClient]:
    staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
    async with http.post("/api/consultations", json={"customer_name": "J"}, headers=staff) as r:
        consultation = await r.json()
    tokens = {
        role: consultation[f"{role}_link"].rsplit("/", 1)[1] for role in ("customer", "stylist")
    }
    customer = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={tokens['customer']}", "customer")
    stylist = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={tokens['stylist']}", "stylist")
    await clocked_call(customer, stylist)
    return staff, consultation, customer, stylist


async def test_a_sigkill_mid_recording_leaves_a_file_that_plays(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = start_serve(data, port)
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            staff, consultation, customer, stylist = await serve_call(http, port, data)
            try:
                await agree_both(customer, stylist)
                await asyncio.sleep(6)
                proc.kill()
                proc.wait()
            finally:
                await customer.close()
                await stylist.close()
        # What the killed service left plays (up to the last second or two).
        staged = list((data / "recordings" / ".staging").rglob("*.part"))
        assert len(staged) == 2
        for path in staged:
            video, _onsets, duration = decode(path)
            assert duration >= 3.0, duration
            assert len(video) >= 3.0 * 30 * 0.9
        # The next start finishes them: listed, with their hash, a proper index and duration.
        proc = start_serve(data, port)
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
                recordings = (await r.json())["recordings"]
            assert len(recordings) == 2
            for entry in recordings:
                assert 3.0 <= entry["duration_s"] <= 7.0
                async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
                    body = await r.read()
                assert hashlib.sha256(body).hexdigest() == entry["sha256"]
                path = tmp_path / f"{entry['id']}.webm"
                path.write_bytes(body)
                with av.open(str(path)) as container:
                    assert container.duration is not None  # the recovered copy has one
                video, _onsets, _duration = decode(path)
                assert len(video) >= 3.0 * 30 * 0.9
        assert not list((data / "recordings" / ".staging").rglob("*.part"))
    finally:
        proc.kill()
        proc.wait()


async def test_a_full_disk_stops_the_recording_and_the_call_goes_on(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = start_serve(data, port, recordings_disk="120k")
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            staff, consultation, customer, stylist = await serve_call(http, port, data)
            try:
                await agree_both(customer, stylist)
                for client in (customer, stylist):
                    off = await client.expect("recording", timeout=60)
                    assert (off["state"], off["reason"]) == ("off", "storage-full")
                # The call goes on: media and chat.
                seen = len(stylist.partner_frames("customer"))
                await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) > seen + 30)
                await customer.send({"type": "chat", "text": "still there?", "id": "x"})
                assert (await stylist.expect("chat"))["text"] == "still there?"
                # What was written before the disk filled up is kept, and plays.
                async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
                    recordings = (await r.json())["recordings"]
                assert recordings, "nothing kept of the recording"
                for entry in recordings:
                    async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
                        body = await r.read()
                    assert hashlib.sha256(body).hexdigest() == entry["sha256"]
                    path = tmp_path / f"{entry['id']}.webm"
                    path.write_bytes(body)
                    video, _onsets, _duration = decode(path)
                    assert video
            finally:
                await customer.close()
                await stylist.close()
    finally:
        proc.kill()
        proc.wait()


async def test_an_h264_call_is_recorded_as_matroska(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    tmp_path: Path,
) -> None:
    customer: CallClient = clients(
        "customer", consultation["customer_link"], video_codecs=("video/H264",)
    )
    stylist: CallClient = clients(
        "stylist", consultation["stylist_link"], video_codecs=("video/H264",)
    )
    await clocked_call(customer, stylist)
    await agree_both(customer, stylist)
    await asyncio.sleep(4)
    await stylist.send({"type": "record", "action": "stop"})
    await stylist.expect("recording")
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        recordings = (await r.json())["recordings"]
    assert len(recordings) == 2
    for entry in recordings:
        assert entry["media_type"] == "video/x-matroska"
        async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
            body = await r.read()
        path = tmp_path / f"{entry['id']}.mkv"
        path.write_bytes(body)
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        video, onsets, _duration = decode(path)
        numbers = [n for _, n in video]
        assert len(set(numbers)) >= 0.98 * (numbers[-1] - numbers[0] + 1)
        assert numbers[-1] - numbers[0] >= 3 * 30 * 0.8
        assert abs(lip_sync_offset(video, onsets)) <= 0.080


async def test_a_codec_change_goes_on_in_new_files(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    tmp_path: Path,
) -> None:
    """The customer's page offers again with H.264 while its VP8 is recorded: the recording
    goes on in a new pair of files (a new session), and the pages see it on throughout."""
    customer, stylist = pair(clients, consultation)
    await clocked_call(customer, stylist)
    await agree_both(customer, stylist)
    await asyncio.sleep(3)
    await customer.close_media()
    customer.video_codecs = ("video/H264",)
    epoch = time.monotonic() + 0.2
    await customer.start_media(ClockedPattern(1, epoch), audio=BeepTrack(epoch))

    async def listed() -> list[dict[str, Any]]:
        async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
            return list((await r.json())["recordings"])

    deadline = time.monotonic() + 30
    while len(await listed()) < 2:  # the first pair finished
        assert time.monotonic() < deadline, "the first files were not finished"
        await asyncio.sleep(0.2)
    await asyncio.sleep(4)
    await stylist.send({"type": "record", "action": "stop"})
    for client in (customer, stylist):
        # The first "recording" message since "on": the recording never looked off.
        off = await client.expect("recording")
        assert (off["state"], off["reason"]) == ("off", "stopped")
    recordings = await listed()
    sessions: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in recordings:
        sessions.setdefault(entry["session"], {})[entry["role"]] = entry
    assert len(sessions) == 2 and all(len(s) == 2 for s in sessions.values()), recordings
    first, second = sorted(sessions.values(), key=lambda s: s["customer"]["started_at"])
    expected = {"customer": ("vp8", "h264"), "stylist": ("vp8", "vp8")}
    for role, codecs in expected.items():
        for session, codec in zip((first, second), codecs, strict=True):
            entry = session[role]
            async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
                body = await r.read()
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            path = tmp_path / entry["id"]
            path.write_bytes(body)
            with av.open(str(path)) as container:
                assert container.streams.video[0].codec_context.name == codec
            video, _onsets, _duration = decode(path)
            assert len(video) >= 30, (role, codec, len(video))  # a second of frames at least
