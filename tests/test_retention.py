"""Retention (issue 17B): consultations idle for N months removed by one node, with a clock the
test controls; each removal in the audit log as system:retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.api.deletion import folders
from consult.appkeys import SETTINGS, STORE
from consult.recording.audit import AuditFilter
from consult.recording.retention import ACTOR, Retention, cutoff

from .conftest import create_consultation, token_of
from .customer_data import jpeg

pytestmark = pytest.mark.timeout(60)


def test_months_back_by_the_calendar() -> None:
    at = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    assert cutoff(at, 1) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert cutoff(at, 3) == datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
    assert cutoff(at, 24) == datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    assert cutoff(datetime(2024, 5, 31, tzinfo=UTC), 3) == datetime(2024, 2, 29, tzinfo=UTC)


async def test_idle_consultations_are_removed_with_their_files_and_audited(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    store = server.app[STORE]
    made = [await create_consultation(http, staff, customer_name=n) for n in ("Old", "Live", "New")]
    old, live, new = made
    for c in made:
        async with http.post(
            f"/api/consultations/{c['id']}/chat-photos",
            params={"id": "p"},
            data=jpeg(70),
            headers={"Authorization": f"Bearer {token_of(c['customer_link'])}",
                     "Content-Type": "image/jpeg"},
        ) as r:  # fmt: skip
            assert r.status == 201
    now = datetime.now(UTC)
    # Idle since seven months (the old one, and one whose call is live right now), or active.
    await store.update_consultation(old["id"], {"last_activity_at": now - timedelta(days=215)})
    await store.set_status(live["id"], "live")
    await store.update_consultation(live["id"], {"last_activity_at": now - timedelta(days=215)})
    clock = [now]
    retention = Retention(store, 6, folders(server.app), clock=lambda: clock[0])

    assert await retention.run_due() == [old["id"]]
    async with http.get(f"/api/consultations/{old['id']}", headers=staff) as r:
        assert r.status == 404
    assert not (server.app[SETTINGS].data_dir / "stills" / old["id"]).exists()
    for c in (live, new):
        async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
            assert r.status == 200
    entries = (await store.audit.entries(AuditFilter(actor=ACTOR))).entries
    assert [(e.action, e.subject) for e in entries] == [
        ("retention-removed", f"consultation:{old['id']}")
    ]
    # Done for now: not due again (on any node) until an hour has passed.
    assert await retention.run_due() is None
    # Three months on, everything is idle for more than six months... but for the live call.
    await store.set_status(live["id"], "open")
    clock[0] = now + timedelta(days=31 * 7)
    removed = await retention.run_due()
    assert removed is not None and set(removed) == {live["id"], new["id"]}
    assert len((await store.audit.entries(AuditFilter(actor=ACTOR))).entries) == 3


async def test_retention_is_off_by_default(server: TestServer) -> None:
    assert server.app[SETTINGS].retention_months is None


async def test_an_appointment_or_a_check_in_to_come_keeps_a_consultation(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    """Idle for months, but booked ahead or with a check-in to come: kept until then."""
    store = server.app[STORE]
    now = datetime.now(UTC)
    booked = await create_consultation(http, staff, customer_name="Booked")
    checked = await create_consultation(http, staff, customer_name="Checked")
    ahead = now + timedelta(days=40)
    await store.update_consultation(booked["id"], {"scheduled_at": ahead})
    async with http.post(
        f"/api/consultations/{checked['id']}/checkins",
        json={"due_at": ahead.isoformat()},
        headers=staff,
    ) as r:
        assert r.status == 201, await r.text()
    for c in (booked, checked):
        await store.update_consultation(c["id"], {"last_activity_at": now - timedelta(days=215)})
    retention = Retention(store, 6, folders(server.app))
    assert await retention.apply(now) == []
    # Six months after the appointment and the check-in, they go.
    removed = await retention.apply(ahead + timedelta(days=31 * 6 + 1))
    assert set(removed) == {booked["id"], checked["id"]}
