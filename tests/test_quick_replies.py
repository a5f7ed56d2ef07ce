"""Quick replies: staff keep them (create, edit, remove, in order); the console reads them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .conftest import token_of

pytestmark = pytest.mark.timeout(60)


async def test_staff_create_edit_and_remove_quick_replies(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    made = []
    for text in ("See you soon!", "  We open at 9.  "):
        async with http.post("/api/quick-replies", json={"text": text}, headers=staff) as r:
            assert r.status == 201
            made.append((await r.json())["quick_reply"])
    assert [m["text"] for m in made] == ["See you soon!", "We open at 9."]
    first, second = made
    async with http.put(
        f"/api/quick-replies/{first['id']}", json={"text": "See you!"}, headers=staff
    ) as r:
        assert (await r.json())["quick_reply"] == {"id": first["id"], "text": "See you!"}
    # The stylist's console reads them, in the order made; the customer does not.
    stylist = {"Authorization": f"Bearer {token_of(consultation['stylist_link'])}"}
    async with http.get("/api/quick-replies", headers=stylist) as r:
        assert [q["text"] for q in (await r.json())["quick_replies"]] == [
            "See you!",
            "We open at 9.",
        ]
    customer = {"Authorization": f"Bearer {token_of(consultation['customer_link'])}"}
    async with http.get("/api/quick-replies", headers=customer) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "forbidden")
    async with http.delete(f"/api/quick-replies/{second['id']}", headers=staff) as r:
        assert r.status == 204
    async with http.get("/api/quick-replies", headers=staff) as r:
        assert [q["id"] for q in (await r.json())["quick_replies"]] == [first["id"]]
    # Gone, or never there: 404 and nothing changes.
    for method in ("PUT", "DELETE"):
        async with http.request(
            method, f"/api/quick-replies/{second['id']}", json={"text": "x"}, headers=staff
        ) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (404, "not-found")


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": 5}, {"text": "a", "x": 1}],
)
async def test_a_bad_quick_reply_is_refused_and_stores_nothing(
    http: aiohttp.ClientSession, staff: dict[str, str], body: dict[str, Any]
) -> None:
    async with http.post("/api/quick-replies", json=body, headers=staff) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid-request")
    async with http.get("/api/quick-replies", headers=staff) as r:
        assert (await r.json())["quick_replies"] == []
