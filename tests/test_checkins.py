"""Aftercare check-ins: scheduled by staff, the photo request in the conversation when due,
answered by the customer (photos through the quality gate, the form), on the record, in the
export and on the dashboard; overdue; answered twice; followed up with one click."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from consult.aftercare import Answers, CheckinDefaults
from consult.app import create_app
from consult.appkeys import AFTERCARE, CONVERSATIONS, DUE_WORK, SETTINGS, STILLS, STORE
from consult.checkins import KIND, Aftercare
from consult.due import DueRunner
from consult.errors import CheckinSent, InvalidRequest, UnknownCheckin
from consult.recording.audit import AuditFilter
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .accounts import add_member
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of
from .hand_media import PHOTOS
from .process import start_serve, wait_healthy

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


class Clock:
    """The time as a test sets it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(data)


SHARP = next(p for p in PHOTOS if p.name.startswith("both_hands")).read_bytes()
HAND = cv2.imread(str(next(p for p in PHOTOS if p.name.startswith("both_hands"))))
BLURRY = jpeg(cv2.GaussianBlur(HAND, (0, 0), 4))
DARK = jpeg((HAND * 0.12).astype(np.uint8))


# the store, on SQLite and PostgreSQL


@pytest.fixture
async def store(tmp_path: Path, database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    yield store
    await store.close()


async def test_the_store_schedules_moves_sends_and_answers_once(store: Store) -> None:
    consultation, _ = await store.create_consultation(
        customer_name="Ann", link_ttl=timedelta(days=7)
    )
    log = store.checkins
    assert await log.defaults() == CheckinDefaults((3, 14), 2)
    await log.set_defaults(CheckinDefaults((2, 7, 21), 3), NOW)
    await log.set_defaults(CheckinDefaults((5,), 1), NOW)  # saved again: updated, not added
    assert await log.defaults() == CheckinDefaults((5,), 1)

    first, second = await log.add(consultation.id, [NOW + timedelta(days=3), NOW], NOW)
    assert [c.id for c in await log.of(consultation.id)] == [second.id, first.id]
    await log.move(first.id, NOW + timedelta(days=4))
    assert (await log.get(first.id)).due_at == NOW + timedelta(days=4)

    # Sent once: the second marking finds it sent (two nodes, or a retry after a crash).
    assert await log.mark_sent(second.id, NOW)
    assert not await log.mark_sent(second.id, NOW)
    with pytest.raises(CheckinSent):
        await log.move(second.id, NOW)
    with pytest.raises(CheckinSent):
        await log.remove(second.id)
    with pytest.raises(UnknownCheckin):
        await log.move("nope", NOW)

    # A view's photo replaced, the form answered twice: updated, nothing added.
    assert await log.set_photo(second.id, "top", "still-1", NOW) is None
    assert await log.set_photo(second.id, "top", "still-2", NOW) == "still-1"
    answered, first_time = await log.answer(second.id, Answers(True, False, 4, "ok"), NOW)
    assert first_time and answered.state == "answered" and answered.photos == {"top": "still-2"}
    later = NOW + timedelta(hours=1)
    again, first_time = await log.answer(second.id, Answers(False, False, 5), later)
    assert not first_time
    assert again.answered_at == NOW and again.updated_at == later
    assert again.answers == {"lifting": False, "chipping": False, "comfort": 5, "text": ""}
    listed = await log.listing(NOW - timedelta(days=1), NOW + timedelta(days=5))
    assert [(i.checkin.id, i.customer_name) for i in listed] == [
        (first.id, "Ann"),
        (second.id, "Ann"),
    ]
    # Not due by then: not listed.
    assert [i.checkin.id for i in await log.listing(NOW, NOW + timedelta(days=1))] == [second.id]

    await log.remove(first.id)
    assert [c.id for c in await log.of(consultation.id)] == [second.id]


async def test_bad_days_and_answers_are_refused() -> None:
    for days in [(0,), (3, 3), (400,), tuple(range(1, 12))]:
        with pytest.raises(InvalidRequest):
            CheckinDefaults(days)
    with pytest.raises(InvalidRequest):
        Answers(False, False, 6)
    with pytest.raises(InvalidRequest):
        Answers(False, False, 3, "x" * 2001)


# the service, over HTTP, with a controllable clock


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def aftercare(server: TestServer, clock: Clock) -> Aftercare:
    """The service as the app has it, on the test's clock (the dashboard's standing)."""
    app = server.app
    return Aftercare(app[STORE], app[STILLS], app[CONVERSATIONS], app[SETTINGS], clock)


@pytest.fixture
def runner(server: TestServer, clock: Clock) -> DueRunner:
    """The due-work runner with the app's check-in handler, on the test's clock."""
    app = server.app
    handlers = {KIND: app[AFTERCARE].run_due}
    return DueRunner(app[STORE].database, handlers, node="test", clock=clock)


async def history(http: aiohttp.ClientSession, headers: dict[str, str], cid: str) -> list[Any]:
    async with http.get(f"/api/consultations/{cid}/messages", headers=headers) as r:
        assert r.status == 200
        return [m for m in (await r.json())["history"] if m["type"] == "chat"]


async def upload(
    http: aiohttp.ClientSession, headers: dict[str, str], checkin: str, view: str, data: bytes
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"/api/checkins/{checkin}/photos?view={view}",
        data=data,
        headers=headers | {"Content-Type": "image/jpeg"},
    ) as r:
        return r.status, await r.json()


async def test_a_check_in_from_due_to_answered_to_the_record_and_the_dashboard(
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    aftercare: Aftercare,
    runner: DueRunner,
    clock: Clock,
) -> None:
    c = await create_consultation(http, staff, customer_name="Mei Lin", customer_language="zh-CN")
    customer = {"Authorization": f"Bearer {token_of(c['customer_link'])}"}
    # The salon's default days, then scheduled when the consultation is done.
    async with http.put(
        "/api/checkin-settings", json={"days": [3, 14], "overdue_days": 2}, headers=staff
    ) as r:
        assert r.status == 200
    async with http.post(f"/api/consultations/{c['id']}/checkins", json={}, headers=staff) as r:
        assert r.status == 201
        made = (await r.json())["checkins"]
    days = [datetime.fromisoformat(m["due_at"]) - clock.now for m in made]
    assert [round(d / timedelta(days=1)) for d in days] == [3, 14]
    first = made[0]

    # Not due yet: nothing in the conversation, and the customer cannot open it.
    assert await runner.run_once() == 0
    assert await history(http, customer, c["id"]) == []
    async with http.get(f"/api/checkins/{first['id']}", headers=customer) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (409, "checkin-not-sent")

    # Day 3: the request, once, however often the due work runs (or its handler again).
    clock.now += timedelta(days=3, minutes=1)
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0
    assert await aftercare.deliver(first["id"]) is False
    (request,) = await history(http, customer, c["id"])
    assert request["from"] == "stylist" and request["id"] == f"checkin:{first['id']}"
    assert "回访" in request["text"]
    link = f"{c['customer_link']}/checkin/{first['id']}"
    assert link in request["text"]
    async with http.get(link.removeprefix("http://links.test")) as r:
        assert r.status == 200 and "checkin" in await r.text()

    # The quality gate: a blurry photo and a dark one are refused, with what to fix.
    status, body = await upload(http, customer, first["id"], "top", BLURRY)
    assert (status, body["error"]["code"]) == (422, "photo-refused")
    assert "hold-still" in body["error"]["hints"]
    status, body = await upload(http, customer, first["id"], "side", DARK)
    assert (status, body["error"]["code"]) == (422, "photo-refused")
    assert "more-light" in body["error"]["hints"]
    async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
        assert (await r.json())["stills"] == []

    # Sharp photos of each view; the top taken again replaces the first.
    for view in ("top", "side", "cuticles", "top"):
        status, body = await upload(http, customer, first["id"], view, SHARP)
        assert status == 201, body
    assert set(body["photos"]) == {"top", "side", "cuticles"}
    async with http.put(
        f"/api/checkins/{first['id']}/answers",
        json={"lifting": True, "chipping": False, "comfort": 4, "text": "One nail lifts."},
        headers=customer,
    ) as r:
        assert r.status == 200
        assert (await r.json())["state"] == "answered"
    # Answered twice: the second updates, nothing is duplicated.
    async with http.put(
        f"/api/checkins/{first['id']}/answers",
        json={"lifting": True, "chipping": True, "comfort": 3, "text": "Two now."},
        headers=customer,
    ) as r:
        assert (await r.json())["answers"]["chipping"] is True

    # The salon is told in the conversation, once: the inbox shows it unread.
    messages = await history(http, customer, c["id"])
    assert [m["id"] for m in messages] == [
        f"checkin:{first['id']}",
        f"checkin-answered:{first['id']}",
    ]
    async with http.get("/api/inbox", headers=staff) as r:
        (item,) = [i for i in (await r.json())["conversations"] if i["id"] == c["id"]]
        assert item["unread"] == 1

    # On the record: the form and three photos at full resolution, no more.
    async with http.get(f"/api/consultations/{c['id']}", headers=customer) as r:
        record = await r.json()
    stills = [s for s in record["stills"] if s["source"] == "checkin"]
    assert len(stills) == 3 and {(s["width"], s["height"]) for s in stills} == {(720, 382)}
    (answered,) = record["checkins"]  # the second is not sent yet: the customer sees one
    assert answered["answers"]["text"] == "Two now."
    assert set(answered["photos"].values()) == {s["id"] for s in stills}

    # In the export: the form in record.json and the page, the originals byte for byte.
    async with http.get(f"/api/consultations/{c['id']}/export", headers=staff) as r:
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    exported = json.loads(archive.read("record.json"))
    assert [x["answers"]["comfort"] for x in exported["checkins"] if x["answers"]] == [3]
    for still in stills:
        assert archive.read(f"originals/{still['id']}.jpg") == SHARP
    assert "Aftercare check-ins" in archive.read("index.html").decode()

    # The dashboard (on the test's clock): answered; the next one is not due yet; then due,
    # then overdue. (The app's own, on today's clock, lists none yet: GET /api/checkins.)
    board = await aftercare.board()
    assert [i.checkin.id for i in board.answered] == [first["id"]]
    assert board.due == board.overdue == []
    async with http.get("/api/checkins", headers=staff) as r:
        assert await r.json() == {"due": [], "overdue": [], "answered": []}
    clock.now += timedelta(days=11)
    assert await runner.run_once() == 1
    later = await aftercare.board()
    assert [i.checkin.id for i in later.due] == [made[1]["id"]]
    clock.now += timedelta(days=2)
    later = await aftercare.board()
    assert [i.checkin.id for i in later.overdue] == [made[1]["id"]]
    assert [i.customer_name for i in later.answered] == ["Mei Lin"]


async def test_staff_add_move_and_remove_check_ins(
    server: TestServer,
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    consultation: dict[str, Any],
) -> None:
    due = server.app[DUE_WORK]
    cid = consultation["id"]
    at = datetime(2027, 1, 5, 10, tzinfo=UTC)
    async with http.post(
        f"/api/consultations/{cid}/checkins", json={"due_at": at.isoformat()}, headers=staff
    ) as r:
        (added,) = (await r.json())["checkins"]
    async with http.post(
        f"/api/consultations/{cid}/checkins", json={"days": [7]}, headers=staff
    ) as r:
        assert r.status == 201
    later = (at + timedelta(days=2)).isoformat()
    async with http.patch(
        f"/api/checkins/{added['id']}", json={"due_at": later}, headers=staff
    ) as r:
        assert datetime.fromisoformat((await r.json())["due_at"]) == at + timedelta(days=2)
    # Its due work moved with it, in the same transaction; removed with it.
    work = await due.get(f"checkin:{added['id']}")
    assert work is not None and work.due_at == at + timedelta(days=2)
    async with http.delete(f"/api/checkins/{added['id']}", headers=staff) as r:
        assert r.status == 204
    assert await due.get(f"checkin:{added['id']}") is None
    # Each change is in the audit log, by whom.
    found = await server.app[STORE].audit.entries(AuditFilter(subject=f"checkin:{added['id']}"))
    assert [(e.actor, e.action) for e in reversed(found.entries)] == [
        ("staff-key", "scheduled"), ("staff-key", "moved"), ("staff-key", "deleted")
    ]  # fmt: skip
    async with http.get(f"/api/consultations/{cid}/checkins", headers=staff) as r:
        assert len((await r.json())["checkins"]) == 1
    # Bad input: a clear error, nothing stored.
    for body in (
        {"days": [0]},
        {"days": [3, 3]},
        {"due_at": "2027-01-05T10:00:00"},
        {"days": [3], "due_at": at.isoformat()},
        {"days": "3"},
    ):
        async with http.post(f"/api/consultations/{cid}/checkins", json=body, headers=staff) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid-request")
    async with http.post("/api/consultations/nope/checkins", json={}, headers=staff) as r:
        assert r.status == 404
    async with http.get(f"/api/consultations/{cid}/checkins", headers=staff) as r:
        assert len((await r.json())["checkins"]) == 1


async def test_same_again_or_a_repair_from_an_answered_check_in_is_one_click(
    http: aiohttp.ClientSession, staff: dict[str, str], runner: DueRunner, clock: Clock
) -> None:
    c = await create_consultation(http, staff, customer_name="Ann", customer_ref="C-7")
    async with http.post(
        f"/api/consultations/{c['id']}/checkins", json={"days": [1]}, headers=staff
    ) as r:
        (checkin,) = (await r.json())["checkins"]
    clock.now += timedelta(days=1, seconds=1)
    await runner.run_once()
    for kind in ("repair", "same-again"):
        async with http.post(
            f"/api/checkins/{checkin['id']}/follow-up", json={"kind": kind}, headers=staff
        ) as r:
            assert r.status == 201
            made = await r.json()
        assert made["customer_link"].startswith("http://links.test/c/")
        assert made["based_on"] == c["id"]
        assert made["repair_of"] == (c["id"] if kind == "repair" else None)
        async with http.get(f"/api/checkins/{checkin['id']}", headers=staff) as r:
            assert (await r.json())["followup_id"] == made["id"]
    async with http.post(
        f"/api/checkins/{checkin['id']}/follow-up", json={"kind": "other"}, headers=staff
    ) as r:
        assert r.status == 400


# a schedule through a SIGKILL and a restart


async def test_sigkill_and_restart_mid_schedule_lose_and_repeat_nothing(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, data = served
    await wait_healthy(port)
    base = f"http://127.0.0.1:{port}"
    staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
    start = datetime.now(UTC) + timedelta(seconds=1)
    made: dict[str, list[str]] = {}
    async with aiohttp.ClientSession(base_url=base) as http:
        for n in range(3):
            c = await create_consultation(http, staff, customer_name=f"Customer {n}")
            made[c["id"]] = []
            for i in range(4):
                # Half due at once, one after another; half 8 s later, after the kill.
                k = 4 * n + i
                at = start + timedelta(seconds=0.2 * k + (8 if k >= 6 else 0))
                async with http.post(
                    f"/api/consultations/{c['id']}/checkins",
                    json={"due_at": at.isoformat()},
                    headers=staff,
                ) as r:
                    made[c["id"]].append((await r.json())["checkins"][0]["id"])
        # Killed once the schedule has begun: no shutdown, no cleanup.
        sent_before = 0
        while sent_before == 0:
            await asyncio.sleep(0.05)
            for cid in made:
                sent_before += len(await history(http, staff, cid))
    proc.kill()
    proc.wait()
    assert sent_before <= 6  # the kill came mid-schedule

    restarted = start_serve(data, port)
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=base) as http:
            for _ in range(600):
                states = []
                for cid in made:
                    async with http.get(f"/api/consultations/{cid}/checkins", headers=staff) as r:
                        states += [c["state"] for c in (await r.json())["checkins"]]
                if states == ["sent"] * 12:
                    break
                await asyncio.sleep(0.1)
            assert states == ["sent"] * 12
            # Each request once, in its own conversation: nothing lost, nothing twice.
            for cid, ids in made.items():
                messages = await history(http, staff, cid)
                assert sorted(m["id"] for m in messages) == sorted(f"checkin:{i}" for i in ids)
    finally:
        restarted.terminate()
        restarted.wait()


async def test_the_due_request_through_the_runner_on_sqlite_and_postgresql(
    aiohttp_server: Any, tmp_path: Path, database_url: str
) -> None:
    """The app's own runner posts the request in its transaction, on either database; a
    repeated run stores nothing twice."""
    server = await aiohttp_server(create_app(make_settings(tmp_path, database_url=database_url)))
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        c = await create_consultation(http, staff)
        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        async with http.post(
            f"/api/consultations/{c['id']}/checkins", json={"due_at": past}, headers=staff
        ) as r:
            (checkin,) = (await r.json())["checkins"]
        for _ in range(300):
            async with http.get(f"/api/checkins/{checkin['id']}", headers=staff) as r:
                if (await r.json())["state"] == "sent":
                    break
            await asyncio.sleep(0.05)
        assert not await server.app[AFTERCARE].deliver(checkin["id"])
        messages = await history(http, staff, c["id"])
        assert [m["id"] for m in messages] == [f"checkin:{checkin['id']}"]
        work = await server.app[DUE_WORK].get(f"checkin:{checkin['id']}")
        assert work is not None and work.done_at is not None


async def test_stylists_see_the_check_ins_of_their_own_and_unassigned_consultations(
    server: TestServer, http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    """Issue 17 with 16: the dashboard's board and the customer page list a stylist's own and
    the unassigned consultations' check-ins, not a colleague's."""
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    async with http.post("/api/customers", json={"name": "Ruth Wong"}, headers=staff) as r:
        customer = (await r.json())["customer"]["id"]
    checkin = {}
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for who, assigned in (("sam", sam.id), ("kim", kim.id), ("nobody", None)):
        c = await create_consultation(
            http, staff, customer_name=None, customer_id=customer, assigned_to=assigned
        )
        async with http.post(
            f"/api/consultations/{c['id']}/checkins", json={"due_at": past}, headers=staff
        ) as r:
            assert r.status == 201, await r.text()
            checkin[who] = (await r.json())["checkins"][0]["id"]

    async def board(headers: dict[str, str]) -> set[str]:
        async with http.get("/api/checkins", headers=headers) as r:
            assert r.status == 200, await r.text()
            found = await r.json()
        return {i["id"] for part in ("due", "overdue", "answered") for i in found[part]}

    async def page(headers: dict[str, str]) -> set[str]:
        async with http.get(f"/api/customers/{customer}", headers=headers) as r:
            assert r.status == 200, await r.text()
            return {i["id"] for i in (await r.json())["check_ins"]}

    assert await board(staff) == await page(staff) == set(checkin.values())
    assert await board(sam.bearer) == await page(sam.bearer) == {checkin["sam"], checkin["nobody"]}
    assert await board(kim.bearer) == await page(kim.bearer) == {checkin["kim"], checkin["nobody"]}
