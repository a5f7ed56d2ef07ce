"""Consent before a call (issue 17B): stored with the wording's version and its time, per
customer and consultation; where the salon requires it, a customer's call waits for it, and
v1 clients keep working where it does not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.appkeys import STORE
from consult.config import Settings
from consult.errors import InvalidRequest, NotFound
from consult.recording.audit import AuditFilter
from consult.recording.consents import KEPT, VERSION
from consult.recording.store import Store

from .conftest import create_consultation, make_settings, token_of
from .stores import audit_log_down

pytestmark = pytest.mark.timeout(60)
ACTOR = "system:test"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, require_consent=True)


async def test_consent_is_kept_with_its_version_per_customer_and_consultation(
    store: Store,
) -> None:
    first, _ = await store.create_consultation(customer_name="Ada", link_ttl=timedelta(days=1))
    assert first.customer_id is not None
    second, _ = await store.create_consultation(customer_id=first.customer_id,
                                                link_ttl=timedelta(days=1))  # fmt: skip
    assert await store.consents.current(first.id) is None
    with pytest.raises(InvalidRequest):
        await store.consents.give(first.id, "1999-01-01", audit=store.audit, actor=ACTOR)
    with pytest.raises(NotFound):
        await store.consents.give("nothing", VERSION, audit=store.audit, actor=ACTOR)
    given = await store.consents.give(first.id, VERSION, audit=store.audit, actor=ACTOR)
    assert (given.version, given.kept, given.customer_id) == (VERSION, list(KEPT),
                                                              first.customer_id)  # fmt: skip
    assert await store.consents.current(first.id) == given
    # Per consultation: the next one asks again.
    assert await store.consents.current(second.id) is None
    later = await store.consents.give(second.id, VERSION, audit=store.audit, actor=ACTOR)
    assert [c.consultation_id for c in await store.consents.of_customer(first.customer_id)] == [
        second.id, first.id,
    ]  # fmt: skip
    assert later.given_at >= given.given_at


async def join(server: TestServer, http: aiohttp.ClientSession, link: str) -> dict[str, Any]:
    ws = await http.ws_connect(server.make_url("/ws").with_query(token=token_of(link)))
    try:
        first: dict[str, Any] = await ws.receive_json(timeout=10)
        if first.get("type") == "error":
            await ws.receive()
            first["close_code"] = ws.close_code
        return first
    finally:
        await ws.close()


async def test_where_the_salon_requires_it_the_customer_agrees_before_the_call(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    c = await create_consultation(http, staff)
    customer = {"Authorization": f"Bearer {token_of(c['customer_link'])}"}
    stylist = {"Authorization": f"Bearer {token_of(c['stylist_link'])}"}
    url = f"/api/consultations/{c['id']}/consent"
    async with http.get(url, headers=customer) as r:
        body = await r.json()
    assert body == {"version": VERSION, "kept": list(KEPT), "required": True, "given": None}
    refused = await join(server, http, c["customer_link"])
    assert (refused["code"], refused["close_code"]) == ("consent-required", 4412)
    # The stylist is not asked.
    assert (await join(server, http, c["stylist_link"]))["type"] == "welcome"
    # Only the customer agrees, to the wording shown now.
    for headers in (stylist, staff):
        async with http.post(url, json={"version": VERSION}, headers=headers) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (403, "forbidden")
    for bad in ({"version": "old"}, {}, {"version": VERSION, "x": 1}):
        async with http.post(url, json=bad, headers=customer) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid-request")
    async with http.post(url, json={"version": VERSION}, headers=customer) as r:
        assert r.status == 201
        given = (await r.json())["given"]
    assert given["version"] == VERSION and given["given_at"]
    async with http.get(url, headers=stylist) as r:
        assert (await r.json())["given"] == given
    assert (await join(server, http, c["customer_link"]))["type"] == "welcome"


async def test_v1_clients_join_where_consent_is_not_required(
    aiohttp_server: Callable[..., Any], tmp_path: Path, staff: dict[str, str]
) -> None:
    server: TestServer = await aiohttp_server(create_app(make_settings(tmp_path / "v1")))
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        c = await create_consultation(http, staff)
        assert (await join(server, http, c["customer_link"]))["type"] == "welcome"
        async with http.get(
            f"/api/consultations/{c['id']}/consent",
            headers={"Authorization": f"Bearer {token_of(c['customer_link'])}"},
        ) as r:
            assert (await r.json())["required"] is False


async def test_a_consent_is_never_kept_without_its_audit_entry(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    store = server.app[STORE]
    c = await create_consultation(http, staff)
    customer = {"Authorization": f"Bearer {token_of(c['customer_link'])}"}
    url = f"/api/consultations/{c['id']}/consent"
    async with (
        audit_log_down(store),
        http.post(url, json={"version": VERSION}, headers=customer) as r,
    ):
        assert r.status == 507  # the database refused the write
    # The entry could not be written: the agreement was not kept either.
    async with http.get(url, headers=customer) as r:
        assert (await r.json())["given"] is None
    async with http.post(url, json={"version": VERSION}, headers=customer) as r:
        assert r.status == 201
    customer_id = (await store.get_consultation(c["id"])).customer_id
    entries = (await store.audit.entries(AuditFilter(subject=f"customer:{customer_id}"))).entries
    assert [(e.action, e.detail) for e in entries] == [
        ("consented", {"version": VERSION, "consultation": c["id"]})
    ]
