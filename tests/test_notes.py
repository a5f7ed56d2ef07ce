"""The stylist's private notes and the shared summary."""

from __future__ import annotations

from typing import Any

import aiohttp

from .client import CallClient
from .conftest import token_of


async def put_notes(
    http: aiohttp.ClientSession, consultation: dict[str, Any], token: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.put(
        f"/api/consultations/{consultation['id']}/notes",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        return r.status, await r.json()


async def test_notes_are_private_and_the_summary_is_shared(
    http: aiohttp.ClientSession,
    clients: Any,
    consultation: dict[str, Any],
    staff: dict[str, str],
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    stylist_token = token_of(consultation["stylist_link"])
    status, saved = await put_notes(
        http, consultation, stylist_token,
        {"notes": "Thin nails, avoid acrylic.", "summary": "Almond, nude shimmer"},
    )  # fmt: skip
    assert status == 200
    assert saved["notes"] == "Thin nails, avoid acrylic."
    assert saved["summary_updated_at"]

    to_customer = await customer.expect("notes")
    assert to_customer == {"type": "notes", "summary": "Almond, nude shimmer"}
    to_stylist = await stylist.expect("notes")
    assert to_stylist["notes"] == "Thin nails, avoid acrylic."

    # Saving one keeps the other.
    status, saved = await put_notes(http, consultation, stylist_token, {"summary": "Almond"})
    assert (saved["notes"], saved["summary"]) == ("Thin nails, avoid acrylic.", "Almond")

    customer_token = token_of(consultation["customer_link"])
    url = f"/api/consultations/{consultation['id']}"
    async with http.get(url, params={"token": customer_token}) as r:
        record = await r.json()
    assert record["summary"] == "Almond" and "notes" not in record
    async with http.get(url, headers=staff) as r:
        assert (await r.json())["notes"] == "Thin nails, avoid acrylic."
    # A page that joins later gets them in its welcome, by role.
    again: CallClient = clients("customer", consultation["customer_link"])
    welcome = await again.connect()
    assert welcome["consultation"]["summary"] == "Almond"
    assert "notes" not in welcome["consultation"]


async def test_only_the_salon_edits_notes(
    http: aiohttp.ClientSession, consultation: dict[str, Any], staff: dict[str, str]
) -> None:
    status, body = await put_notes(
        http, consultation, token_of(consultation["customer_link"]), {"summary": "mine"}
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await put_notes(http, consultation, "nope", {"summary": "x"})
    assert status == 401
    for bad in ({}, {"notes": 5}, {"summary": "x" * 5001}, {"other": "x"}):
        status, body = await put_notes(
            http, consultation, token_of(consultation["stylist_link"]), bad
        )
        assert (status, body["error"]["code"]) == (400, "invalid-request"), bad
    status, _ = await put_notes(
        http, consultation, staff["Authorization"].split()[1], {"notes": "from the desk"}
    )
    assert status == 200
