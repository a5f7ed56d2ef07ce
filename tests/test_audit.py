"""The audit log (consult/recording/audit.py, consult/api/audit.py): an entry for each audited
action, what the owner reads of it (filters, pages, CSV), and its pruning with a clock of our
own (consult/recording/audit_pruning.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from consult.appkeys import AUDIT, RECORDINGS, STORE
from consult.recording.audit import ACTIONS, AuditFilter
from consult.recording.audit_pruning import AuditPruning
from consult.recording.recordings import Recording
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .accounts import PASSWORD, add_member, sign_in
from .attachment_media import pdf
from .conftest import create_consultation, token_of


async def _entries(server: TestServer, **filters: Any) -> list[tuple[str, str, str]]:
    page = await server.app[AUDIT].entries(AuditFilter(**filters), limit=500)
    return [(e.actor, e.action, e.subject) for e in reversed(page.entries)]


async def test_each_audited_action_leaves_an_entry(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    owner = await add_member(server.app, "owner", "Olive")
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    o, s, k = f"api-key:{owner.id}", f"account:{sam.id}", f"api-key:{kim.id}"
    # Signing in, and failing to.
    async with http.post("/api/session", json={"email": sam.email, "password": "wrong-wrong"}):
        pass
    async with http.post("/api/session", json={"email": "x@example.com", "password": "nope-nope"}):
        pass
    await sign_in(http, sam.email)
    c = await create_consultation(http, owner.bearer, assigned_to=sam.id)
    cid = c["id"]
    # Sam (signed in) views, changes, exports; their still, attachment and recording.
    async with http.get(f"/api/consultations/{cid}") as r:
        assert r.status == 200
    async with http.put(f"/api/consultations/{cid}/notes", json={"notes": "n"}) as r:
        assert r.status == 200
    async with http.get(f"/api/consultations/{cid}/export") as r:
        assert r.status == 200
        await r.read()
    _ok, png = cv2.imencode(".png", np.full((48, 64, 3), 120, np.uint8))
    async with http.post(
        f"/api/consultations/{cid}/chat-photos",
        params={"id": "p"},
        data=bytes(png),
        headers={"Content-Type": "image/png"},
    ) as r:
        still = (await r.json())["message"]["still"]["id"]
    async with http.post(
        f"/api/consultations/{cid}/attachments", params={"kind": "file", "id": "f"}, data=pdf()
    ) as r:
        attachment = (await r.json())["message"]["attachment"]["id"]
    files, rows = server.app[RECORDINGS], server.app[STORE].recordings
    started = datetime.now(UTC)
    recording = Recording("r" * 24, cid, "customer", "s" * 24, "recording", started, "")
    await rows.begin(recording)
    files.prepare()
    files.staged(recording.id).write_bytes(b"\x1a\x45\xdf\xa3" + bytes(1000))
    await rows.complete(recording.id, files.place(recording.id, cid, "webm", 1.0), started)
    for path in (f"/api/stills/{still}", f"/api/stills/{still}/thumb",
                 f"/api/attachments/{attachment}", f"/api/recordings/{recording.id}"):  # fmt: skip
        async with http.get(path) as r:
            assert r.status == 200
    async with http.get(f"/api/stills/{still}", params={"download": "1"}) as r:
        assert r.status == 200
    # A player's further Range requests are the same viewing.
    async with http.get(f"/api/recordings/{recording.id}", headers={"Range": "bytes=100-"}) as r:
        assert r.status == 206
    # The customer's own view is not staff's.
    customer = token_of(c["customer_link"])
    async with http.get(f"/api/consultations/{cid}", params={"token": customer}) as r:
        assert r.status == 200
    # Kim is refused; the owner revokes the links, reassigns, changes the salon.
    async with http.get(f"/api/consultations/{cid}", headers=kim.bearer) as r:
        assert r.status == 403
    async with http.post(f"/api/consultations/{cid}/revoke-links", headers=owner.bearer) as r:
        assert r.status == 200
    async with http.put(
        f"/api/consultations/{cid}/assignee", json={"account_id": kim.id}, headers=owner.bearer
    ) as r:
        assert r.status == 200
    hours = {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}}
    async with http.put("/api/salon", json=hours, headers=owner.bearer) as r:
        assert r.status == 200
    async with http.patch(f"/api/accounts/{kim.id}", json={"name": "Kimberly"}, headers=staff):
        pass
    async with http.put(
        f"/api/accounts/{kim.id}/password", json={"password": "0123456789xy"}, headers=staff
    ) as r:
        assert r.status == 204
    async with http.post("/api/api-keys", json={"name": "k"}) as r:
        key = (await r.json())["id"]
    async with http.delete(f"/api/api-keys/{key}") as r:
        assert r.status == 204
    async with http.delete("/api/session") as r:
        assert r.status == 200

    seen = await _entries(server, since=started - timedelta(minutes=1))
    assert ("anonymous", "sign-in-failed", f"account:{sam.id}") in seen
    assert ("anonymous", "sign-in-failed", "email:x@example.com") in seen
    assert (s, "signed-in", f"account:{sam.id}") in seen
    assert (o, "created", f"consultation:{cid}") in seen
    for action in ("viewed", "changed", "exported"):
        assert (s, action, f"consultation:{cid}") in seen, action
    assert seen.count((s, "viewed", f"still:{still}")) == 1  # not its thumbnail
    assert (s, "downloaded", f"still:{still}") in seen
    assert (s, "viewed", f"attachment:{attachment}") in seen
    assert seen.count((s, "viewed", f"recording:{recording.id}")) == 1
    assert not [e for e in seen if e[0].startswith("customer:")]
    assert (k, "refused", f"consultation:{cid}") in seen
    assert (o, "revoked", f"consultation:{cid}") in seen
    assert (o, "assigned", f"consultation:{cid}") in seen
    assert (o, "changed", "settings:salon") in seen
    assert ("staff-key", "changed", f"account:{kim.id}") in seen
    assert ("staff-key", "password-reset", f"account:{kim.id}") in seen
    assert (s, "created", f"api-key:{key}") in seen
    assert (s, "revoked", f"api-key:{key}") in seen
    assert (s, "signed-out", f"account:{sam.id}") in seen
    assert {e[1] for e in seen} <= ACTIONS
    # Nothing secret in what is kept.
    page = await server.app[AUDIT].entries(limit=500)
    assert PASSWORD not in str([e.to_json() for e in page.entries])


async def test_the_owner_reads_the_log_by_page_and_filter_and_as_csv(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    audit = server.app[AUDIT]
    for i in range(7):
        await audit.record(f"account:a{i % 2}", "viewed", f"consultation:c{i}")
    # Whatever a cell holds, it never runs as a formula in a spreadsheet.
    await audit.record("=HYPERLINK(1)", "sign-in-failed", "email:x@example.com")
    pages: list[list[dict[str, Any]]] = []
    before = None
    while True:
        params = {"limit": "3", "actor": "account:a0"} | ({"before": str(before)} if before else {})
        async with http.get("/api/audit", params=params, headers=staff) as r:
            assert r.status == 200
            body = await r.json()
        pages.append(body["entries"])
        before = body["next_before"]
        if before is None:
            break
    subjects = [e["subject"] for page in pages for e in page]
    assert subjects == ["consultation:c6", "consultation:c4", "consultation:c2", "consultation:c0"]
    assert [len(p) for p in pages] == [3, 1]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with http.get("/api/audit", params={"from": future}, headers=staff) as r:
        assert (await r.json())["entries"] == []
    for bad in ({"from": "yesterday"}, {"to": "2026-11-29T08:00:00"}, {"limit": "0"}):
        async with http.get("/api/audit", params=bad, headers=staff) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid-request"
    async with http.get(
        "/api/audit.csv", params={"subject": "consultation:c3"}, headers=staff
    ) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[0] == ["id", "at", "actor", "action", "subject", "detail"]
    assert [row[2:5] for row in rows[1:]] == [["account:a1", "viewed", "consultation:c3"]]
    async with http.get("/api/audit.csv", headers=staff) as r:
        text = await r.text()
    assert ",'=HYPERLINK(1),sign-in-failed," in text
    # The export itself is in the log.
    assert ("staff-key", "exported", "audit:log") in await _entries(server)


async def test_old_entries_are_pruned_by_one_node_with_a_clock_of_our_own(
    database_url: str, tmp_path: Path
) -> None:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    try:
        audit = store.audit
        await audit.record("system:test", "viewed", "consultation:old")
        await audit.record("system:test", "viewed", "consultation:new")
        now = datetime.now(UTC)
        clock = [now + timedelta(days=3)]
        a = AuditPruning(audit, store.leases, timedelta(days=7), clock=lambda: clock[0])
        b = AuditPruning(audit, store.leases, timedelta(days=7), clock=lambda: clock[0])
        assert await a.run_due() == 0  # kept: 3 days old is within 7
        clock[0] = now + timedelta(days=3, minutes=30)
        assert await a.run_due() is None  # done half an hour ago (this clock): not due yet
        clock[0] = now + timedelta(days=10)
        assert await a.run_due() == 2
        assert await b.run_due() is None  # another node did it a moment ago
        await audit.record("system:test", "viewed", "consultation:newer")
        assert len((await audit.entries()).entries) == 1
        clock[0] = now + timedelta(days=11)
        assert await b.run_due() == 1
        assert (await audit.entries()).entries == []
    finally:
        await store.close()


async def test_an_unknown_action_is_a_bug_not_an_entry(
    server: TestServer,
) -> None:
    with pytest.raises(ValueError, match="not an audit action"):
        await server.app[AUDIT].record("system:test", "looked-around", "consultation:x")
