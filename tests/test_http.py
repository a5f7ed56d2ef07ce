"""The HTTP API against the real app on loopback."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .conftest import STAFF_KEY, create_consultation, token_of


async def test_healthz(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_create_returns_links_and_record(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    body = await create_consultation(
        http,
        staff,
        customer_name="  Mei Lin ",
        customer_ref="C-7",
        scheduled_at="2026-12-01T10:00:00+08:00",
        notes="gel refill",
    )
    assert body["customer_name"] == "Mei Lin"
    assert body["customer_ref"] == "C-7"
    assert body["scheduled_at"] == "2026-12-01T02:00:00+00:00"
    assert body["status"] == "open"
    assert body["customer_link"].startswith("http://links.test/c/")
    assert body["stylist_link"].startswith("http://links.test/s/")
    assert len(token_of(body["customer_link"])) >= 32


async def test_list_filters_by_customer_ref_and_repeats_links(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    first = await create_consultation(http, staff, customer_ref="C-1")
    await create_consultation(http, staff, customer_ref="C-2")
    async with http.get("/api/consultations", headers=staff) as response:
        assert len((await response.json())["consultations"]) == 2
    async with http.get("/api/consultations?customer_ref=C-1", headers=staff) as response:
        (only,) = (await response.json())["consultations"]
    assert only["id"] == first["id"]
    assert only["customer_link"] == first["customer_link"]
    assert only["stylist_link"] == first["stylist_link"]


async def test_get_by_staff_and_by_each_participant(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    url = f"/api/consultations/{consultation['id']}"
    async with http.get(url, headers=staff) as response:
        record = await response.json()
    assert record["stylist_link"] == consultation["stylist_link"]
    assert "notes" in record
    for link in (consultation["customer_link"], consultation["stylist_link"]):
        token = token_of(link)
        for kwargs in (
            {"params": {"token": token}},
            {"headers": {"Authorization": f"Bearer {token}"}},
        ):
            async with http.get(url, **kwargs) as response:  # type: ignore[arg-type]
                assert response.status == 200
                record = await response.json()
            assert record["id"] == consultation["id"]
            # Participants never get the links (a customer could take the stylist's).
            assert "stylist_link" not in record and "customer_link" not in record
            assert "customer_ref" not in record
            # The private notes are the salon's: the stylist's, never the customer's.
            assert ("notes" in record) == (link == consultation["stylist_link"])


async def test_a_link_never_opens_another_consultation(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    other = await create_consultation(http, staff, customer_name="Other")
    token = token_of(other["customer_link"])
    async with http.get(f"/api/consultations/{consultation['id']}", params={"token": token}) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/consultations"),
        ("GET", "/api/consultations"),
        ("POST", "/api/consultations/x/revoke-links"),
    ],
)
async def test_staff_endpoints_need_the_staff_key(
    http: aiohttp.ClientSession, consultation: dict[str, Any], method: str, path: str
) -> None:
    customer = token_of(consultation["customer_link"])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {customer}"}):
        async with http.request(method, path, headers=headers, json={"customer_name": "x"}) as r:
            assert r.status == 401
            body = await r.json()
            assert body["error"]["code"] == "unauthorized" and body["error"]["message"]


async def test_get_with_bad_credentials(
    http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> None:
    url = f"/api/consultations/{consultation['id']}"
    async with http.get(url) as r:
        assert r.status == 401
    async with http.get(url, params={"token": "not-a-token"}) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "invalid-token"


async def test_unknown_consultation_and_route_are_404_json(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    async with http.get("/api/consultations/missing", headers=staff) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not-found"
    async with http.get("/api/nothing-here") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not-found"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b"{}",
        b'{"customer_name": ""}',
        b'{"customer_name": 5}',
        b'{"customer_name": "' + b"x" * 201 + b'"}',
        b'{"customer_name": "a", "admin": true}',
        b'{"customer_name": "a", "scheduled_at": "tomorrow"}',
        b'{"customer_name": "a", "scheduled_at": "2026-12-01T10:00:00"}',
    ],
)
async def test_invalid_bodies_are_400_and_create_nothing(
    http: aiohttp.ClientSession, staff: dict[str, str], body: bytes
) -> None:
    async with http.post("/api/consultations", data=body, headers=staff) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "invalid-request"
    async with http.get("/api/consultations", headers=staff) as r:
        assert (await r.json())["consultations"] == []


async def test_oversized_body_is_413(http: aiohttp.ClientSession, staff: dict[str, str]) -> None:
    body = b'{"customer_name": "a", "notes": "' + b"x" * 100_000 + b'"}'
    async with http.post("/api/consultations", data=body, headers=staff) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "too-large"


async def test_revoke_links_gives_new_ones_and_old_stop(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    async with http.post(
        f"/api/consultations/{consultation['id']}/revoke-links", headers=staff
    ) as r:
        assert r.status == 200
        fresh = await r.json()
    assert fresh["customer_link"] != consultation["customer_link"]
    old = token_of(consultation["customer_link"])
    async with http.get(f"/api/consultations/{consultation['id']}", params={"token": old}) as r:
        assert r.status == 401
    async with http.get(f"/c/{old}") as r:
        assert r.status == 404
    async with http.get(f"/c/{token_of(fresh['customer_link'])}") as r:
        assert r.status == 200


async def test_link_pages(http: aiohttp.ClientSession, consultation: dict[str, Any]) -> None:
    customer, stylist = (
        token_of(consultation["customer_link"]),
        token_of(consultation["stylist_link"]),
    )
    async with http.get(f"/c/{customer}") as r:
        assert r.status == 200
        assert 'data-testid="remote-video"' in await r.text()
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["Cache-Control"] == "no-store"
    async with http.get(f"/s/{stylist}") as r:
        assert r.status == 200
    # A link only opens its own role's page.
    async with http.get(f"/s/{customer}") as r:
        assert r.status == 404
    async with http.get("/c/unknown") as r:
        assert r.status == 404
        assert "not valid" in await r.text()
    async with http.get("/static/js/call.js") as r:
        assert r.status == 200


async def test_staff_key_is_compared_exactly(http: aiohttp.ClientSession) -> None:
    for key in (STAFF_KEY[:-1], STAFF_KEY + "x", STAFF_KEY.upper(), f" {STAFF_KEY}x"):
        async with http.get("/api/consultations", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 401


async def test_staff_sign_in_with_an_encrypted_http_only_cookie(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    async with http.get("/api/session") as r:
        assert await r.json() == {"staff": False}
    async with http.post("/api/session", json={"staff_key": "wrong"}) as r:
        assert r.status == 401
    async with http.get("/api/consultations") as r:
        assert r.status == 401
    async with http.post("/api/session", json={"staff_key": STAFF_KEY}) as r:
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("consult_staff=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https deployments get Secure
    assert STAFF_KEY not in cookie
    async with http.get("/api/session") as r:
        assert await r.json() == {"staff": True, "role": "owner", "account": None}
    await create_consultation(http, {})  # the cookie alone is enough
    async with http.get("/api/consultations") as r:
        assert len((await r.json())["consultations"]) == 1
    async with http.delete("/api/session") as r:
        assert r.status == 200
    async with http.get("/api/consultations") as r:
        assert r.status == 401


async def test_a_forged_or_stale_session_cookie_is_refused(
    http: aiohttp.ClientSession, server: Any
) -> None:
    http.cookie_jar.update_cookies({"consult_staff": "not-a-real-session"})
    async with http.get("/api/consultations") as r:
        assert r.status == 401
    async with http.post("/api/session", json={"staff_key": STAFF_KEY}) as r:
        assert r.status == 200
    async with http.get("/api/consultations") as r:
        assert r.status == 200
    # The staff key changes (a new key is configured): sessions opened with the old one end.
    from consult.appkeys import STAFF_KEY as STAFF_KEY_KEY

    server.app._state[STAFF_KEY_KEY] = "a-new-staff-key-0123456789"
    async with http.get("/api/consultations") as r:
        assert r.status == 401


def test_message_catalogues_have_the_same_keys() -> None:
    import json
    from pathlib import Path

    folder = Path(__file__).parent.parent / "web" / "i18n"
    catalogues = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert set(catalogues) == {"en.json", "zh-CN.json"}
    en, zh = catalogues["en.json"], catalogues["zh-CN.json"]
    assert set(en) == set(zh)
    assert all(zh[k].strip() for k in zh)
    # Every error code the server can send has its text.
    from consult import errors

    codes = {c.code for c in vars(errors).values() if isinstance(c, type) and hasattr(c, "code")}
    missing = {c for c in codes if f"error.{c}" not in en}
    assert missing <= {"internal", "invalid-request", "unauthorized", "forbidden", "not-found",
                       "disconnected", "malformed", "unknown-type", "too-large",
                       "range-not-satisfiable"}  # fmt: skip


async def test_metrics_for_staff_only(http: aiohttp.ClientSession, staff: dict[str, str]) -> None:
    async with http.get("/metrics") as r:
        assert r.status == 401
    async with http.get("/metrics", headers=staff) as r:
        assert r.status == 200
        text = await r.text()
    for name in ("consult_calls 0.0", "consult_peers 0.0", "process_resident_memory_bytes"):
        assert name in text
