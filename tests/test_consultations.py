"""The customer's email address and language on a consultation: given at creation, edited
with PATCH, checked (a clear 400), shown to staff and the stylist, never to the customer."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .conftest import create_consultation, token_of


async def patch(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation_id: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.patch(
        f"/api/consultations/{consultation_id}", json=body, headers=staff
    ) as response:
        return response.status, await response.json()


async def test_given_at_creation_and_edited(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    created = await create_consultation(
        http, staff, customer_email="  Jane@Example.COM ", customer_language="zh-CN"
    )
    # The domain is normalised; the mailbox's own part is kept as typed.
    assert created["customer_email"] == "Jane@example.com"
    assert created["customer_language"] == "zh-CN"
    status, body = await patch(
        http, staff, created["id"], {"customer_email": "li@example.cn", "customer_language": None}
    )
    assert status == 200
    assert (body["customer_email"], body["customer_language"]) == ("li@example.cn", None)
    assert body["email"]["address"] == "li@example.cn"
    assert body["email"]["configured"] is False  # the test server has no SMTP
    status, body = await patch(
        http, staff, created["id"], {"scheduled_at": "2026-12-24T15:00:00+08:00"}
    )
    assert (status, body["scheduled_at"]) == (200, "2026-12-24T07:00:00+00:00")
    assert body["customer_email"] == "li@example.cn"  # what is not sent is left alone
    status, body = await patch(http, staff, created["id"], {"customer_email": ""})
    assert (status, body["customer_email"]) == (200, None)


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"customer_email": "jane"}, "invalid-email", "@"),
        ({"customer_email": "jane@example"}, "invalid-email", "customer_email"),
        ({"customer_email": "a@b.com" + "m" * 260}, "invalid-request", "254"),
        ({"customer_language": "fr"}, "invalid-request", "en, zh-CN"),
        ({"scheduled_at": "2026-12-24T15:00:00"}, "invalid-request", "time zone"),
        ({}, "invalid-request", "Nothing to change"),
        ({"customer_name": "X"}, "invalid-request", "customer_name"),
    ],
)
async def test_bad_edits_are_refused_and_change_nothing(
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    body: dict[str, Any],
    code: str,
    says: str,
) -> None:
    created = await create_consultation(http, staff, customer_email="jane@example.com")
    status, error = await patch(http, staff, created["id"], body)
    assert status == 400
    assert error["error"]["code"] == code
    assert says in error["error"]["message"]
    async with http.get(f"/api/consultations/{created['id']}", headers=staff) as response:
        assert (await response.json())["customer_email"] == "jane@example.com"


async def test_a_bad_address_at_creation_creates_nothing(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    body = {"customer_name": "Jane", "customer_email": "not an address"}
    async with http.post("/api/consultations", json=body, headers=staff) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid-email"
    async with http.get("/api/consultations", headers=staff) as response:
        assert (await response.json())["consultations"] == []


async def test_only_staff_edit_and_the_customer_never_sees_the_address(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    created = await create_consultation(http, staff, customer_email="jane@example.com")
    for link in (created["customer_link"], created["stylist_link"]):
        bearer = {"Authorization": f"Bearer {token_of(link)}"}
        status, _ = await patch(http, bearer, created["id"], {"customer_email": "x@example.com"})
        assert status in (401, 403)
    customer = {"Authorization": f"Bearer {token_of(created['customer_link'])}"}
    async with http.get(f"/api/consultations/{created['id']}", headers=customer) as response:
        seen = await response.json()
    assert "customer_email" not in seen
    assert "email" not in seen
    stylist = {"Authorization": f"Bearer {token_of(created['stylist_link'])}"}
    async with http.get(f"/api/consultations/{created['id']}", headers=stylist) as response:
        assert (await response.json())["email"]["address"] == "jane@example.com"
