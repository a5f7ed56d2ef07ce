"""Every endpoint with every kind of caller: a link never opens another consultation, the
customer never reaches the salon's side, a revoked link opens nothing, a stylist's account
never reaches another stylist's consultation, only the owner manages the salon, nothing
answers 500."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from consult.app import create_app
from consult.appkeys import ACCOUNTS, AUDIT, RECORDINGS, STORE
from consult.recording.audit import AuditFilter
from consult.recording.consents import VERSION as CONSENT_VERSION
from consult.recording.recordings import Recording
from consult.slots import SALON, Availability

from .accounts import add_member, sign_in
from .attachment_media import pdf
from .conftest import STAFF_KEY, create_consultation, make_settings, node_settings, token_of
from .hand_media import PHOTOS

ATTACHED = pdf()
HAND = next(p for p in PHOTOS if p.name.startswith("both_hands")).read_bytes()
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
    # Staff accounts, assignment and the audit log (issue 17); {mine} is the stylist's account
    # the consultation is assigned to.
    ("PUT", "/api/consultations/{id}/assignee", {"account_id": "{mine}"}),
    ("GET", "/api/accounts", None),
    ("POST", "/api/accounts", {"email": "new@example.com", "password": "0123456789ab",
                               "role": "stylist", "name": "New"}),
    ("PATCH", "/api/accounts/{mine}", {"name": "Mine"}),
    ("PUT", "/api/accounts/{mine}/password", {"password": "0123456789ab"}),
    ("GET", "/api/staff", None),
    ("GET", "/api/api-keys", None),
    ("POST", "/api/api-keys", {"name": "automation"}),
    ("GET", "/api/audit", None),
    ("GET", "/api/audit.csv", None),
    ("PUT", "/api/salon", {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}}),
    ("GET", "/api/salon", None),
    ("GET", "/api/backups", None),
    ("POST", "/api/consultations/{id}/same-again", None),
    # Customers, consent and the customer's own data (issue 17B); deleting: below.
    ("GET", "/api/customers?q=a", None),
    ("POST", "/api/customers", {"name": "New"}),
    ("GET", "/api/customers/{customer}", None),
    ("PATCH", "/api/customers/{customer}", {"notes": "n"}),
    ("GET", "/api/customers/{customer}/export", None),
    ("GET", "/api/consultations/{id}/consent", None),
    ("POST", "/api/consultations/{id}/consent", {"version": CONSENT_VERSION}),
    ("GET", "/api/consultations/{id}/export-all", None),
    ("POST", "/api/consultations/{id}/deletion-request", None),
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
    # Aftercare check-ins (issue 16B): {checkin} was sent to the customer, {scheduled} and
    # {spare} are not yet.
    ("GET", "/api/checkins", None),
    ("GET", "/api/checkin-settings", None),
    ("PUT", "/api/checkin-settings", {"days": [3, 14], "overdue_days": 2}),
    ("GET", "/api/consultations/{id}/checkins", None),
    ("POST", "/api/consultations/{id}/checkins", {"days": [5]}),
    ("GET", "/api/checkins/{checkin}", None),
    ("PATCH", "/api/checkins/{scheduled}", {"due_at": "2030-01-02T10:00:00+00:00"}),
    ("DELETE", "/api/checkins/{spare}", None),
    ("POST", "/api/checkins/{checkin}/photos?view=top", HAND),
    ("PUT", "/api/checkins/{checkin}/answers", {"lifting": False, "chipping": False, "comfort": 5}),
    ("POST", "/api/checkins/{checkin}/follow-up", {"kind": "repair"}),
]  # fmt: skip
#: Anyone may ask (no credential needed; one presented is not looked at).
PUBLIC = {("GET", "/api/slots?from=2026-12-01T00:00:00%2B08:00&to=2026-12-02T00:00:00%2B08:00")}
BAD = {"Authorization": "Bearer not-the-staff-key"}
#: owner, mine and theirs: accounts (by their API keys): the owner, the stylist whose
#: consultation {id} is, and another stylist.
CALLERS = ["nobody", "staff", "customer", "stylist", "other-customer", "other-stylist", "revoked",
           "owner", "mine", "theirs"]  # fmt: skip
ACCOUNTS_CALLERS = {"owner", "mine", "theirs"}
STAFF_CALLERS = {"staff"} | ACCOUNTS_CALLERS
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
    ("PUT", "/api/consultations/{id}/assignee"),
    ("GET", "/api/api-keys"),
    ("POST", "/api/api-keys"),
    ("GET", "/api/salon"),
    ("POST", "/api/consultations/{id}/same-again"),
    # issue 17B
    ("GET", "/api/customers?q=a"),
    ("POST", "/api/customers"),
    ("GET", "/api/customers/{customer}"),
    ("PATCH", "/api/customers/{customer}"),
    ("GET", "/api/customers/{customer}/export"),
    # issue 16
    ("GET", "/api/bookings"),
    ("GET", "/api/availability"),
    ("PUT", "/api/availability"),
    # issue 16B
    ("GET", "/api/checkins"),
    ("GET", "/api/checkin-settings"),
    ("PUT", "/api/checkin-settings"),
    ("GET", "/api/consultations/{id}/checkins"),
    ("POST", "/api/consultations/{id}/checkins"),
    ("PATCH", "/api/checkins/{scheduled}"),
    ("DELETE", "/api/checkins/{spare}"),
    ("POST", "/api/checkins/{checkin}/follow-up"),
}
#: What only the customer does, from their own link (staff and the stylist get 403), and the
#: status it answers (issue 17B).
CUSTOMER_ONLY = {
    ("POST", "/api/consultations/{id}/consent"): 201,
    ("GET", "/api/consultations/{id}/export-all"): 200,
    ("POST", "/api/consultations/{id}/deletion-request"): 202,
}
#: What only the owner (or the staff key) may do: a stylist's account gets 403.
OWNER_ONLY = {
    ("POST", "/api/swatches"),
    ("GET", "/api/accounts"),
    ("POST", "/api/accounts"),
    ("PATCH", "/api/accounts/{mine}"),
    ("PUT", "/api/accounts/{mine}/password"),
    ("GET", "/api/audit"),
    ("GET", "/api/audit.csv"),
    ("PUT", "/api/salon"),
    ("GET", "/api/backups"),
    ("PUT", "/api/availability"),
    ("GET", "/api/customers/{customer}/export"),
    ("PUT", "/api/checkin-settings"),
}
#: What needs an account signed in (the staff key has none; a key makes no keys): 403 for
#: every staff caller here (tests/test_accounts.py signs in).
ACCOUNT_ONLY = {("POST", "/api/api-keys")}
#: Of one consultation: another stylist's account is refused them.
OF_ONE = ("{id}", "{still}", "{attachment}", "{recording}", "{booking}", "{checkin}", "{scheduled}",
          "{spare}")  # fmt: skip
#: What the customer's side may do and the stylist's may not (the customer's booking).
BOOKING_SIDE = {"/api/bookings/{booking}"}
#: What only the customer's own link may do (staff and the stylist get 403): a check-in's answers.
CHECKIN_ANSWERS = {"/api/checkins/{checkin}/photos?view=top", "/api/checkins/{checkin}/answers"}
#: What only the stylist's side may do (the customer gets 403).
STYLIST_ONLY = {"/api/consultations/{id}/notes", "/api/stills/{still}/nails",
                "/api/stills/{still}/white-balance", "/api/consultations/{id}/read"}  # fmt: skip
CREATED = {("POST", "/api/consultations"), ("POST", "/api/swatches"),
           ("POST", "/api/stills/{still}/white-balance"),
           ("POST", "/api/consultations/{id}/messages"),
           ("POST", "/api/quick-replies"), ("POST", "/api/customers"),
           ("POST", "/api/consultations/{id}/attachments?kind=file&id=a1&name=x.pdf"),
           ("POST", "/api/accounts"), ("POST", "/api/api-keys"),
           ("POST", "/api/consultations/{id}/same-again"),
           ("POST", "/api/consultations/{id}/checkins"),
           ("POST", "/api/checkins/{checkin}/photos?view=top"),
           ("POST", "/api/checkins/{checkin}/follow-up")}  # fmt: skip
NO_CONTENT = {("PUT", "/api/accounts/{mine}/password")}
#: Each test of every endpoint takes a part of them: all of them would pass the limit of 20
#: failed credentials a minute (tested below) for the callers refused everywhere.
PARTS = 4
assert all(len(ENDPOINTS[part::PARTS]) < 20 for part in range(PARTS))


def expected(method: str, path: str, caller: str, how: str) -> int:
    if (method, path) in PUBLIC:
        return 200
    if (method, path) in PUBLIC:
        return 200
    if caller in ("nobody", "revoked"):
        return 401
    if caller in STAFF_CALLERS and how == "query":
        return 401  # the staff key and API keys are never taken from a URL
    if path == "/api/link/booking":
        return 401 if caller in STAFF_CALLERS else 200  # any link's own booking; a key is no link
    if (method, path) in STAFF_ONLY | OWNER_ONLY and caller not in STAFF_CALLERS:
        return 401  # a link is not a staff key
    if (method, path) in OWNER_ONLY and caller in ("mine", "theirs"):
        return 403
    if (method, path) in ACCOUNT_ONLY and caller in STAFF_CALLERS:
        return 403
    if caller == "theirs" and any(part in path for part in OF_ONE):
        return 403  # another stylist's consultation
    if (method, path) in CUSTOMER_ONLY:
        return CUSTOMER_ONLY[method, path] if caller == "customer" else 403
    if (method, path) == ("GET", "/api/swatches"):
        return 200  # the salon's palette: any call of the salon reads it
    if (method, path) in {("GET", "/api/quick-replies"), ("GET", "/api/staff")}:
        return 403 if caller.endswith("customer") else 200  # the salon's side of any call
    if (method, path) == ("POST", "/api/consultations/{id}/messages") and caller == "customer":
        return 403  # the customer writes from the conversation page's websocket
    if caller.startswith("other-"):
        return 403  # a valid link, of another consultation
    if (method, path) in CUSTOMER_ONLY:
        return CUSTOMER_ONLY[method, path] if caller == "customer" else 403
    if path in STYLIST_ONLY and caller == "customer":
        return 403
    if path in BOOKING_SIDE:
        return 403 if caller == "stylist" else 200  # a cancelled booking comes back
    if path in CHECKIN_ANSWERS and caller != "customer":
        return 403
    if path.endswith("/undertone"):
        return 422  # allowed, but the test still is grey paper: no skin to judge
    if method == "DELETE" or (method, path) in NO_CONTENT:
        return 204
    return 201 if (method, path) in CREATED else 200


@pytest.fixture
async def world(http: aiohttp.ClientSession, staff: dict[str, str], server: Any) -> dict[str, Any]:
    """Two consultations, a still and an attachment of the first, and a revoked link; the
    owner's account, the stylist's the first is assigned to, and another stylist's."""
    members = {
        "owner": await add_member(server.app, "owner", "Owner"),
        "mine": await add_member(server.app, "stylist", "Mine"),
        "theirs": await add_member(server.app, "stylist", "Theirs"),
    }
    mine = await create_consultation(http, staff, assigned_to=members["mine"].id)
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
    } | {name: member.key for name, member in members.items()}
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
    checkins = {}
    for name, due in (
        ("checkin", "2020-01-01"),
        ("scheduled", "2030-01-01"),
        ("spare", "2030-01-01"),
    ):
        async with http.post(
            f"/api/consultations/{mine['id']}/checkins",
            json={"due_at": f"{due}T10:00:00+00:00"},
            headers=staff,
        ) as r:
            checkins[name] = (await r.json())["checkins"][0]["id"]
    # Due long ago: the app's due-work runner sends it at once.
    while True:
        async with http.get(f"/api/checkins/{checkins['checkin']}", headers=staff) as r:
            if (await r.json())["state"] == "sent":
                break
        await asyncio.sleep(0.05)
    return {
        "id": mine["id"],
        "still": still["id"],
        "reply": reply.id,
        "attachment": attachment["id"],
        "recording": recording.id,
        "mine": members["mine"].id,
        "customer": mine["customer_id"],
        "booking": booking.id,
        **checkins,
        "members": members,
        "stylist_link": mine["stylist_link"],
        "tokens": tokens,
        **checkins,
    }


@pytest.mark.parametrize("caller", CALLERS)
async def test_the_conversation_and_inbox_sockets_with_every_caller(
    http: aiohttp.ClientSession, world: dict[str, Any], server: Any, caller: str
) -> None:
    token = world["tokens"][caller]
    ws = await http.ws_connect(server.make_url("/ws/conversation").with_query(token=token or ""))
    first = await ws.receive_json()
    if caller in ("nobody", "revoked") or caller in STAFF_CALLERS:  # staff keys are no links
        assert first["code"] == "invalid-token"
    else:
        assert first["type"] == "conversation" and first["role"] == caller.removeprefix("other-")
        assert "notes" not in first["consultation"] or not caller.endswith("customer")
    await ws.close()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if caller in STAFF_CALLERS:
        ws = await http.ws_connect(server.make_url("/ws/inbox"), headers=headers)
        await ws.close()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.make_url("/ws/inbox"), headers=headers)
        assert refused.value.status == 401


def _fill(text: str, world: dict[str, Any]) -> str:
    names = ("id", "still", "reply", "attachment", "recording", "mine", "customer", "booking",
             "checkin", "scheduled", "spare")  # fmt: skip
    return text.format(**{name: world[name] for name in names})


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("how", ["bearer", "query"])
@pytest.mark.parametrize("part", range(PARTS))
async def test_every_endpoint_with_every_caller(
    http: aiohttp.ClientSession, world: dict[str, Any], caller: str, how: str, part: int
) -> None:
    token = world["tokens"][caller]
    for method, path, body in ENDPOINTS[part::PARTS]:
        url = _fill(path, world)
        if isinstance(body, dict):
            body = {k: _fill(v, world) if isinstance(v, str) else v for k, v in body.items()}
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


async def test_another_stylists_consultation_is_refused_and_audited_by_id_and_by_link(
    http: aiohttp.ClientSession, world: dict[str, Any], server: Any
) -> None:
    theirs, mine = world["members"]["theirs"], world["members"]["mine"]
    async with http.get(f"/api/consultations/{world['id']}", headers=theirs.bearer) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "forbidden"
    # Their own lists leave it out; the assigned stylist's and the owner's have it.
    for member, present in ((theirs, False), (mine, True), (world["members"]["owner"], True)):
        for path, key in (("/api/consultations", "consultations"), ("/api/inbox", "conversations")):
            async with http.get(path, headers=member.bearer) as r:
                ids = {c["id"] for c in (await r.json())[key]}
                assert (world["id"] in ids) is present, (member, path)
    # Signed in with their account, the other stylist opens the consultation's stylist link.
    await sign_in(http, theirs.email)
    token = token_of(world["stylist_link"])
    async with http.get(f"/api/consultations/{world['id']}", params={"token": token}) as r:
        assert r.status == 403
    for path in ("/ws", "/ws/conversation"):
        ws = await http.ws_connect(server.make_url(path).with_query(token=token))
        assert (await ws.receive_json())["code"] == "forbidden"
        await ws.close()
    page = await server.app[AUDIT].entries(AuditFilter(subject=f"consultation:{world['id']}"))
    refused = [e for e in page.entries if e.action == "refused"]
    # By id (with their API key), by link over HTTP and on both websockets (signed in).
    assert [e.actor for e in refused] == [f"account:{theirs.id}"] * 3 + [f"api-key:{theirs.id}"]
    # The assigned stylist is not refused with the same link.
    await sign_in(http, mine.email)
    async with http.get(f"/api/consultations/{world['id']}", params={"token": token}) as r:
        assert r.status == 200
    assert (await server.app[ACCOUNTS].get(mine.id)).role == "stylist"


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
        await aiohttp_server(create_app(node_settings(tmp_path, name, database_url=postgres_url)))
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


@pytest.mark.parametrize("caller", CALLERS)
async def test_deleting_and_merging_with_every_caller(
    http: aiohttp.ClientSession, staff: dict[str, str], server: Any, caller: str
) -> None:
    """Only the owner (their account or the staff key) deletes or merges (issue 17B): each
    route on a consultation of its own, a still and a message of it, its customer; links get
    401, a stylist's account (even the one it is assigned to) 403."""
    members = {
        "owner": await add_member(server.app, "owner", "Owner"),
        "mine": await add_member(server.app, "stylist", "Mine"),
        "theirs": await add_member(server.app, "stylist", "Theirs"),
    }
    mine = await create_consultation(http, staff, assigned_to=members["mine"].id)
    other = await create_consultation(http, staff, customer_name="Other")
    gone = await create_consultation(http, staff, customer_name="Gone")
    async with http.post(f"/api/consultations/{gone['id']}/revoke-links", headers=staff) as r:
        assert r.status == 200
    url = f"/api/consultations/{mine['id']}"
    async with http.post(f"{url}/messages", json={"text": "Hi", "id": "m"}, headers=staff) as r:
        seq = (await r.json())["message"]["seq"]
    capture = await server.app[STORE].create_capture(mine["id"], "stylist")
    _ok, png = cv2.imencode(".png", np.full((48, 64, 3), 120, np.uint8))
    async with http.post(
        f"{url}/stills",
        params={"capture": capture.id},
        data=bytes(png),
        headers={**staff, "Content-Type": "image/png"},
    ) as r:
        still = (await r.json())["still"]["id"]
    tokens = {"nobody": None, "staff": STAFF_KEY, "customer": token_of(mine["customer_link"]),
             "stylist": token_of(mine["stylist_link"]),
             "other-customer": token_of(other["customer_link"]),
             "other-stylist": token_of(other["stylist_link"]),
             "revoked": token_of(gone["customer_link"])} | {
             name: member.key for name, member in members.items()}  # fmt: skip
    token = tokens[caller]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    routes = [
        (
            "POST",
            f"/api/customers/{other['customer_id']}/merge",
            {"into": mine["customer_id"]},
            200,
        ),
        ("DELETE", f"/api/consultations/{mine['id']}/messages/{seq}", None, 204),
        ("DELETE", f"/api/stills/{still}", None, 204),
        ("DELETE", f"/api/consultations/{mine['id']}", None, 204),
        ("DELETE", f"/api/customers/{mine['customer_id']}", None, 204),
    ]
    for method, url, body, done in routes:
        async with http.request(method, url, json=body, headers=headers) as r:
            owner = caller in ("staff", "owner")
            want = done if owner else 403 if caller in ("mine", "theirs") else 401
            assert r.status == want, (method, url, caller, await r.text())
            if r.status >= 400:
                codes = ("forbidden",) if want == 403 else ("unauthorized", "invalid-token")
                assert (await r.json())["error"]["code"] in codes
    # Refused: all of it is still there; done: none of it is.
    async with http.get(f"/api/consultations/{mine['id']}", headers=staff) as r:
        assert r.status == (404 if owner else 200)
