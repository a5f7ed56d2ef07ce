"""Every endpoint with every kind of caller: a link never opens another consultation, the
customer never reaches the salon's side, a revoked link opens nothing, nothing answers 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from consult.app import create_app
from consult.appkeys import RECORDINGS, STORE
from consult.recording.recordings import Recording
from consult.slots import SALON, Availability

from .attachment_media import pdf
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of

ATTACHED = pdf()
# (method, path, JSON body or raw bytes); {id} is the consultation, {still} one of its stills,
# {attachment} one of its attachments, {recording} one of its recordings.
ENDPOINTS = [
    ("GET", "/api/consultations", None),
    ("POST", "/api/consultations", {"customer_name": "X"}),
    ("GET", "/api/consultations/{id}", None),
    ("PUT", "/api/consultations/{id}/notes", {"summary": "s"}),
    ("GET", "/api/consultations/{id}/export", None),
    ("GET", "/api/stills/{still}", None),
    ("GET", "/api/stills/{still}/thumb", None),
    ("POST", "/api/consultations/{id}/revoke-links", None),
    ("GET", "/api/swatches", None),
    ("POST", "/api/swatches", {"name": "N", "hex": "#102030", "finish": "cream", "family": "red"}),
    ("GET", "/api/swatches/export", None),
    ("POST", "/api/stills/{still}/sample", {"x": 1, "y": 1}),
    ("GET", "/api/stills/{still}/undertone", None),
    ("PUT", "/api/stills/{still}/nails", {"polygons": [[[0, 0], [10, 0], [10, 10]]]}),
    ("POST", "/api/stills/{still}/white-balance", {}),
    # Conversations and the inbox (issue 15).
    ("GET", "/api/inbox", None),
    ("GET", "/api/consultations/{id}/messages", None),
    ("POST", "/api/consultations/{id}/messages", {"text": "Hi", "id": "m"}),
    ("POST", "/api/consultations/{id}/read", {"seq": 0}),
    ("GET", "/api/quick-replies", None),
    ("POST", "/api/quick-replies", {"text": "See you soon!"}),
    ("PUT", "/api/quick-replies/{reply}", {"text": "See you!"}),
    ("DELETE", "/api/quick-replies/{reply}", None),
    # Voice, video and file messages: sent by either side of the consultation, and read back.
    ("POST", "/api/consultations/{id}/attachments?kind=file&id=a1&name=x.pdf", ATTACHED),
    ("GET", "/api/attachments/{attachment}", None),
    ("PATCH", "/api/consultations/{id}", {"customer_email": "jane@example.com"}),
    ("GET", "/api/recordings/{recording}", None),
    # Booking (issue 16): public slots; a booking seen, cancelled from its link or by staff;
    # the availability staff publish.
    ("GET", "/api/slots?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00", None),
    ("GET", "/api/consultations/{id}/booking", None),
    ("GET", "/api/link/booking", None),
    ("GET", "/api/bookings/{booking}", None),
    ("DELETE", "/api/bookings/{booking}", None),
    ("GET", "/api/bookings", None),
    ("GET", "/api/availability", None),
    ("PUT", "/api/availability", {"weekly": {"mon": [["09:00", "12:00"]]}}),
]
#: Anyone may ask (no credential needed; one presented is not looked at).
PUBLIC = {("GET", "/api/slots?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00")}
BAD = {"Authorization": "Bearer not-the-staff-key"}
CALLERS = ["nobody", "staff", "customer", "stylist", "other-customer", "other-stylist", "revoked"]
STAFF_ONLY = {
    ("GET", "/api/consultations"),
    ("POST", "/api/consultations"),
    ("POST", "/api/consultations/{id}/revoke-links"),
    ("POST", "/api/swatches"),
    ("GET", "/api/swatches/export"),
    ("GET", "/api/inbox"),
    ("POST", "/api/quick-replies"),
    ("PUT", "/api/quick-replies/{reply}"),
    ("DELETE", "/api/quick-replies/{reply}"),
    ("PATCH", "/api/consultations/{id}"),
    ("GET", "/api/bookings"),
    ("GET", "/api/availability"),
    ("PUT", "/api/availability"),
}
#: What the customer's side may do and the stylist's may not (the customer's booking).
CUSTOMER_ONLY = {"/api/bookings/{booking}"}
#: What only the stylist's side may do (the customer gets 403).
STYLIST_ONLY = {"/api/consultations/{id}/notes", "/api/stills/{still}/nails",
                "/api/stills/{still}/white-balance", "/api/consultations/{id}/read"}  # fmt: skip
CREATED = {("POST", "/api/consultations"), ("POST", "/api/swatches"),
           ("POST", "/api/stills/{still}/white-balance"),
           ("POST", "/api/consultations/{id}/messages"),
           ("POST", "/api/quick-replies"),
           ("POST", "/api/consultations/{id}/attachments?kind=file&id=a1&name=x.pdf")}  # fmt: skip


def expected(method: str, path: str, caller: str, how: str) -> int:
    if (method, path) in PUBLIC:
        return 200
    if caller in ("nobody", "revoked"):
        return 401
    if caller == "staff" and how == "query":
        return 401  # the staff key is never taken from a URL
    if path == "/api/link/booking":
        return 401 if caller == "staff" else 200  # any link's own booking; the key is no link
    if (method, path) in STAFF_ONLY and caller != "staff":
        return 401  # a link is not a staff key
    if (method, path) == ("GET", "/api/swatches"):
        return 200  # the salon's palette: any call of the salon reads it
    if (method, path) == ("GET", "/api/quick-replies"):
        return 403 if caller.endswith("customer") else 200  # the salon's side of any call
    if (method, path) == ("POST", "/api/consultations/{id}/messages") and caller == "customer":
        return 403  # the customer writes from the conversation page's websocket
    if caller.startswith("other-"):
        return 403  # a valid link, of another consultation
    if path in STYLIST_ONLY and caller == "customer":
        return 403
    if path in CUSTOMER_ONLY:
        return 403 if caller == "stylist" else 200
    if path.endswith("/undertone"):
        return 422  # allowed, but the test still is grey paper: no skin to judge
    if method == "DELETE":
        return 204
    return 201 if (method, path) in CREATED else 200


@pytest.fixture
async def world(http: aiohttp.ClientSession, staff: dict[str, str], server: Any) -> dict[str, Any]:
    """Two consultations, a still and an attachment of the first, and a revoked link."""
    mine = await create_consultation(http, staff)
    other = await create_consultation(http, staff, customer_name="Other")
    gone = await create_consultation(http, staff, customer_name="Gone")
    async with http.post(f"/api/consultations/{gone['id']}/revoke-links", headers=staff) as r:
        assert r.status == 200
    capture = await server.app[STORE].create_capture(mine["id"], "stylist")
    _ok, png = cv2.imencode(".png", np.full((48, 64, 3), 120, np.uint8))
    async with http.post(
        f"/api/consultations/{mine['id']}/stills",
        params={"capture": capture.id},
        data=bytes(png),
        headers={**staff, "Content-Type": "image/png"},
    ) as r:
        assert r.status == 201, await r.text()
        still = (await r.json())["still"]
    async with http.post(
        f"/api/consultations/{mine['id']}/attachments",
        params={"kind": "file", "id": "world"},
        data=ATTACHED,
        headers=staff,
    ) as r:
        assert r.status == 201, await r.text()
        attachment = (await r.json())["message"]["attachment"]
    # A recording of the first, as the hub leaves one: its row, then its file in place.
    files, rows = server.app[RECORDINGS], server.app[STORE].recordings
    started = datetime.now(UTC)
    recording = Recording("r" * 24, mine["id"], "customer", "s" * 24, "recording", started, "")
    await rows.begin(recording)
    files.prepare()
    files.staged(recording.id).write_bytes(b"\x1a\x45\xdf\xa3" + bytes(1000))
    await rows.complete(recording.id, files.place(recording.id, mine["id"], "webm", 1.0), started)
    tokens = {
        "nobody": None,
        "staff": STAFF_KEY,
        "customer": token_of(mine["customer_link"]),
        "stylist": token_of(mine["stylist_link"]),
        "other-customer": token_of(other["customer_link"]),
        "other-stylist": token_of(other["stylist_link"]),
        "revoked": token_of(gone["customer_link"]),
    }
    reply = await server.app[STORE].quick_replies.create("Thanks!", datetime.now(UTC))
    # A booking of the first, well before the cut-off, in the salon's availability.
    bookings = server.app[STORE].bookings
    await bookings.set_availability(SALON, Availability(), datetime.now(UTC))
    start = datetime.now(UTC) + timedelta(days=10)
    async with server.app[STORE].database.begin() as conn:
        booking = await bookings.take(
            conn, consultation_id=mine["id"], resource=SALON, start=start,
            end=start + timedelta(minutes=30), customer_zone=None, now=datetime.now(UTC),
        )  # fmt: skip
    return {
        "id": mine["id"],
        "still": still["id"],
        "reply": reply.id,
        "attachment": attachment["id"],
        "recording": recording.id,
        "booking": booking.id,
        "tokens": tokens,
    }


@pytest.mark.parametrize("caller", CALLERS)
async def test_the_conversation_and_inbox_sockets_with_every_caller(
    http: aiohttp.ClientSession, world: dict[str, Any], server: Any, caller: str
) -> None:
    token = world["tokens"][caller]
    ws = await http.ws_connect(server.make_url("/ws/conversation").with_query(token=token or ""))
    first = await ws.receive_json()
    if caller in ("nobody", "revoked", "staff"):  # the staff key is no link
        assert first["code"] == "invalid-token"
    else:
        assert first["type"] == "conversation" and first["role"] == caller.removeprefix("other-")
        assert "notes" not in first["consultation"] or not caller.endswith("customer")
    await ws.close()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if caller == "staff":
        ws = await http.ws_connect(server.make_url("/ws/inbox"), headers=headers)
        await ws.close()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.make_url("/ws/inbox"), headers=headers)
        assert refused.value.status == 401


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("how", ["bearer", "query"])
@pytest.mark.parametrize("half", [0, 1])
async def test_every_endpoint_with_every_caller(
    http: aiohttp.ClientSession, world: dict[str, Any], caller: str, how: str, half: int
) -> None:
    token = world["tokens"][caller]
    # Half the endpoints per server: all of them would pass the limit of 20 failed
    # credentials a minute (tested below) for the callers refused everywhere.
    for method, path, body in ENDPOINTS[half::2]:
        url = path.format(
            id=world["id"],
            still=world["still"],
            reply=world["reply"],
            attachment=world["attachment"],
            recording=world["recording"],
            booking=world["booking"],
        )
        headers = {"Authorization": f"Bearer {token}"} if token and how == "bearer" else {}
        params = {"token": token} if token and how == "query" else {}
        payload = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with http.request(method, url, headers=headers, params=params, **payload) as r:
            want = expected(method, path, caller, how)
            assert r.status == want, (method, path, caller, how, await r.text())
            if r.status >= 400:
                assert (await r.json())["error"]["code"]
            elif caller == "customer" and r.content_type == "application/json":
                assert "notes" not in await r.json()


async def test_failed_authentication_is_limited_per_address(
    http: aiohttp.ClientSession, consultation: dict[str, Any], server: Any
) -> None:
    url = f"/api/consultations/{consultation['id']}"
    for _ in range(20):
        async with http.get(url, params={"token": "guess"}) as r:
            assert r.status == 401
    # Even the right credential is refused until the window passes.
    async with http.get(url, headers={"Authorization": f"Bearer {STAFF_KEY}"}) as r:
        assert r.status == 429
        assert (await r.json())["error"]["code"] == "too-many-attempts"
        assert int(r.headers["Retry-After"]) > 0
    ws = await http.ws_connect(server.make_url("/ws").with_query(token="guess"))
    assert (await ws.receive_json())["code"] == "too-many-attempts"
    await ws.receive()
    assert ws.close_code == 4429
    # Requests that present nothing are not guesses and are not refused.
    async with http.get("/healthz") as r:
        assert r.status == 200


async def test_failed_websocket_tokens_count_too(
    http: aiohttp.ClientSession, consultation: dict[str, Any], server: Any
) -> None:
    for _ in range(20):
        ws = await http.ws_connect(server.make_url("/ws").with_query(token="guess"))
        assert (await ws.receive_json())["code"] == "invalid-token"
        await ws.close()
    async with http.get(
        f"/api/consultations/{consultation['id']}",
        params={"token": token_of(consultation["customer_link"])},
    ) as r:
        assert r.status == 429


async def test_guessing_link_pages_is_limited_too(
    http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> None:
    for i in range(20):
        async with http.get(f"/c/guess-{i}") as r:
            assert r.status == 404
    async with http.get(f"/c/{token_of(consultation['customer_link'])}") as r:
        assert r.status == 429
        # A page, not JSON: the customer opened a link (tests/test_browser.py: its language).
        assert r.content_type == "text/html"
        assert 'data-i18n="lockout.title"' in await r.text()
        assert int(r.headers["Retry-After"]) > 0


async def test_dashboard_sign_in_is_limited_even_for_the_right_key(
    http: aiohttp.ClientSession,
) -> None:
    for _ in range(20):
        async with http.post("/api/session", json={"staff_key": "guess"}) as r:
            assert r.status == 401
    for key in ("guess", STAFF_KEY):
        async with http.post("/api/session", json={"staff_key": key}) as r:
            assert r.status == 429, key
            assert (await r.json())["error"]["code"] == "too-many-attempts"
            assert int(r.headers["Retry-After"]) > 0
    async with http.get("/api/session") as r:
        assert await r.json() == {"staff": False}
    # The lockout is the address's, whichever way it presents the key next.
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    async with http.get("/api/consultations", headers=staff) as r:
        assert r.status == 429


async def test_behind_a_trusted_proxy_each_client_is_limited_alone(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    for trust in (True, False):
        settings = make_settings(tmp_path / str(trust), trust_proxy=trust)
        server = await aiohttp_server(create_app(settings))
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
            # The proxy appends the address it saw; what comes before, a client can write.
            for i in range(20):
                forwarded = {"X-Forwarded-For": f"198.51.100.{i}, 10.0.0.7"}
                async with http.get("/api/consultations", headers=forwarded | BAD) as r:
                    assert r.status == 401
            async with http.get(
                "/api/consultations", headers={"X-Forwarded-For": "10.0.0.7"} | BAD
            ) as r:
                assert r.status == 429
            # Another client behind the same proxy: refused only when the header is not trusted.
            async with http.get(
                "/api/consultations", headers={"X-Forwarded-For": "10.0.0.8"} | BAD
            ) as r:
                assert r.status == (401 if trust else 429)
            if trust:  # the websocket sees the forwarded client too
                for client, code in (
                    ("10.0.0.7", "too-many-attempts"),
                    ("10.0.0.8", "invalid-token"),
                ):
                    ws = await http.ws_connect(
                        "/ws?token=guess", headers={"X-Forwarded-For": client}
                    )
                    assert (await ws.receive_json())["code"] == code
                    await ws.close()


async def test_failures_count_across_nodes_sharing_postgresql(
    aiohttp_server: Any, tmp_path: Path, postgres_url: str
) -> None:
    # Two nodes on one database, one address guessing on both in turn: half the limit each.
    nodes = [
        await aiohttp_server(
            create_app(make_settings(tmp_path / name, database_url=postgres_url, node_id=name))
        )
        for name in ("a", "b")
    ]
    async with aiohttp.ClientSession() as http:
        for i in range(20):
            node = nodes[i % 2]
            async with http.get(node.make_url("/api/consultations"), headers=BAD) as r:
                assert r.status == 401
        for node in nodes:
            staff = {"Authorization": f"Bearer {STAFF_KEY}"}
            async with http.get(node.make_url("/api/consultations"), headers=staff) as r:
                assert r.status == 429, "each node saw only 10: the count is shared"
                assert 0 < int(r.headers["Retry-After"]) <= 61
