"""Staff accounts (consult/recording/accounts.py, consult/api/accounts.py, consult/auth.py):
signing in with an email and password, the same answer for an unknown email and a wrong
password, argon2 hashes, sessions that end with a changed password or a disabled account,
resets by the owner and by email (through a real SMTP server), API keys, the first owner from
the command line; the store on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.appkeys import ACCOUNTS, SETTINGS
from consult.config import Settings
from consult.errors import AccountExists, LastOwner, NotFound
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, hash_token, load_seal_key

from .accounts import PASSWORD, add_member, sign_in
from .conftest import create_consultation, make_settings
from .mail import body_of, emailing
from .smtp import SmtpServer

NEW_PASSWORD = "a new password 2026"


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path, **emailing(smtp))


async def _post_session(http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post("/api/session", json=body) as r:
        return r.status, await r.json()


async def test_an_account_signs_in_with_email_and_password(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    owner = await add_member(server.app, "owner", "Olive")
    # Any case of the address; the session is the account's, with its role.
    async with http.post(
        "/api/session", json={"email": owner.email.upper(), "password": PASSWORD}
    ) as r:
        assert r.status == 200
        body = await r.json()
        cookie = r.headers["Set-Cookie"]
    assert body["role"] == "owner" and body["account"]["id"] == owner.id
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and PASSWORD not in cookie
    async with http.get("/api/session") as r:
        assert (await r.json())["account"]["email"] == owner.email
    async with http.get("/api/consultations") as r:
        assert r.status == 200
    async with http.delete("/api/session") as r:
        assert r.status == 200
    async with http.get("/api/consultations") as r:
        assert r.status == 401


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    stylist = await add_member(server.app, "stylist", "Sam")
    wrong = await _post_session(http, {"email": stylist.email, "password": "not it at all"})
    unknown = await _post_session(http, {"email": "nobody@example.com", "password": PASSWORD})
    assert wrong == unknown
    assert wrong[0] == 401 and wrong[1]["error"]["code"] == "unauthorized"
    # A disabled account answers the same, even with its right password.
    await server.app[ACCOUNTS].update(stylist.id, {"disabled": True}, actor="system:test")
    assert await _post_session(http, {"email": stylist.email, "password": PASSWORD}) == wrong


async def test_sign_in_is_rate_limited_for_unknown_emails_and_wrong_passwords_alike(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    stylist = await add_member(server.app, "stylist", "Sam")
    for i in range(20):
        email = stylist.email if i % 2 else f"guess{i}@example.com"
        status, _ = await _post_session(http, {"email": email, "password": "guess-guess"})
        assert status == 401
    status, body = await _post_session(http, {"email": stylist.email, "password": PASSWORD})
    assert status == 429 and body["error"]["code"] == "too-many-attempts"


async def test_passwords_are_stored_as_argon2id_hashes(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    body = {
        "email": "Ana@Example.com",
        "password": "0123456789ab",
        "role": "stylist",
        "name": "Ana",
    }
    async with http.post("/api/accounts", json=body, headers=staff) as r:
        assert r.status == 201, await r.text()
        made = await r.json()
    assert made["email"] == "ana@example.com" and "password" not in str(made)
    stored = await server.app[ACCOUNTS].password_hash(made["id"])
    assert stored.startswith("$argon2id$") and "0123456789ab" not in stored
    await sign_in(http, "ana@example.com", "0123456789ab")
    # The same address again, a short password, an unknown role: refused, nothing made.
    for bad, code in (
        (body, "account-exists"),
        (body | {"email": "b@example.com", "password": "short"}, "weak-password"),
        (body | {"email": "c@example.com", "role": "admin"}, "invalid-request"),
        (body | {"email": "not an address"}, "invalid-email"),
    ):
        async with http.post("/api/accounts", json=bad, headers=staff) as r:
            assert (await r.json())["error"]["code"] == code
    assert len(await server.app[ACCOUNTS].all()) == 1


async def test_a_changed_password_or_a_disabled_account_ends_its_sessions(
    server: TestServer, staff: dict[str, str]
) -> None:
    stylist = await add_member(server.app, "stylist", "Sam")
    base = str(server.make_url(""))
    jar_a, jar_b = aiohttp.CookieJar(unsafe=True), aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(base_url=base, cookie_jar=jar_a) as a,
        aiohttp.ClientSession(base_url=base, cookie_jar=jar_b) as b,
    ):
        await sign_in(a, stylist.email)
        await sign_in(b, stylist.email)
        # Changing one's own password: the other session ends, this one goes on.
        change = {"current": PASSWORD, "password": NEW_PASSWORD}
        async with a.put("/api/account/password", json=change | {"current": "wrong one!"}) as r:
            assert r.status == 403
        async with a.put("/api/account/password", json=change) as r:
            assert r.status == 204
        async with a.get("/api/inbox") as r:
            assert r.status == 200
        async with b.get("/api/inbox") as r:
            assert r.status == 401
        # The owner sets a new one: every session of the account ends.
        reset = {"password": "set by the owner"}
        async with a.put(f"/api/accounts/{stylist.id}/password", json=reset) as r:
            assert r.status == 403  # a stylist is no owner
        async with a.put(f"/api/accounts/{stylist.id}/password", json=reset, headers=staff) as r:
            assert r.status == 204
        async with a.get("/api/inbox") as r:
            assert r.status == 401
        await sign_in(b, stylist.email, "set by the owner")
        async with b.patch(f"/api/accounts/{stylist.id}", json={"disabled": True}, headers=staff):
            pass
        async with b.get("/api/inbox") as r:
            assert r.status == 401
        async with b.get("/api/inbox", headers=stylist.bearer) as r:
            assert r.status == 401  # its API keys stop too


async def test_the_last_owner_is_neither_disabled_nor_made_a_stylist(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    owner = await add_member(server.app, "owner", "Olive")
    for change in ({"disabled": True}, {"role": "stylist"}):
        async with http.patch(f"/api/accounts/{owner.id}", json=change, headers=staff) as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "last-owner"
    second = await add_member(server.app, "owner", "Otto")
    async with http.patch(
        f"/api/accounts/{owner.id}", json={"role": "stylist"}, headers=staff
    ) as r:
        assert r.status == 200 and (await r.json())["role"] == "stylist"
    assert (await server.app[ACCOUNTS].get(second.id)).role == "owner"


async def test_a_forgotten_password_is_reset_by_email_once(
    http: aiohttp.ClientSession, server: TestServer, smtp: SmtpServer
) -> None:
    stylist = await add_member(server.app, "stylist", "Sam")
    for email in (stylist.email, "nobody@example.com"):
        async with http.post("/api/password-resets", json={"email": email}) as r:
            assert r.status == 202  # the same either way
            assert await r.json() == {"sent": "if an account has this address"}
    [message] = await smtp.mailbox.wait(1)
    assert message["To"] == stylist.email
    link = re.search(r"http://links\.test/reset#(\S+)", body_of(message))
    assert link is not None
    token = link.group(1)
    # Only the token's hash is kept.
    db = sqlite3.connect(server.app[SETTINGS].data_dir / "consult.db")
    try:
        kept = db.execute("SELECT token_hash FROM password_resets").fetchall()
    finally:
        db.close()
    assert kept == [(hash_token(token),)]
    # Asked again at once: no second email (a mailbox is not flooded).
    async with http.post("/api/password-resets", json={"email": stylist.email}) as r:
        assert r.status == 202
    use = {"token": token, "password": NEW_PASSWORD}
    async with http.post("/api/password-resets/use", json=use | {"password": "short"}) as r:
        assert (await r.json())["error"]["code"] == "weak-password"
    async with http.post("/api/password-resets/use", json=use) as r:
        assert r.status == 204
    async with http.post("/api/password-resets/use", json=use) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "invalid-token"
    await sign_in(http, stylist.email, NEW_PASSWORD)
    assert len(smtp.mailbox.messages) == 1


async def test_an_expired_reset_token_opens_nothing(database_url: str, tmp_path: Path) -> None:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    try:
        accounts = store.accounts
        account = await accounts.create(
            email="sam@example.com", name="Sam", role="stylist", password_hash="x", actor="t"
        )
        now = datetime.now(UTC)
        assert await accounts.add_reset(
            account.id, hash_token("old"), now - timedelta(seconds=1), unless_since=now
        )
        assert await accounts.use_reset(hash_token("old"), "y") is None
        assert await accounts.password_hash(account.id) == "x"
    finally:
        await store.close()


async def test_api_keys_act_as_their_account_until_revoked(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    stylist = await add_member(server.app, "stylist", "Sam")
    await sign_in(http, stylist.email)
    async with http.post("/api/api-keys", json={"name": "booking sync"}) as r:
        assert r.status == 201
        made = await r.json()
    assert made["key"].startswith("ck_")
    key = {"Authorization": f"Bearer {made['key']}"}
    mine = await create_consultation(http, key, customer_name="Mine")
    assert mine["assigned_to"] == stylist.id  # a stylist's new consultation is theirs
    # The key makes no keys, and is never taken from a URL.
    async with http.post("/api/api-keys", json={"name": "more"}, headers=key) as r:
        assert r.status == 403
    async with http.get("/api/inbox", params={"token": made["key"]}) as r:
        assert r.status == 401
    async with http.get("/api/api-keys") as r:
        listed = (await r.json())["api_keys"]
    assert made["id"] in {k["id"] for k in listed} and "key" not in str(listed)
    async with http.delete(f"/api/api-keys/{made['id']}") as r:
        assert r.status == 204
    async with http.get("/api/inbox", headers=key) as r:
        assert r.status == 401


async def test_a_stylist_takes_an_unassigned_consultation_and_the_owner_assigns_any(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    c = await create_consultation(http, staff)
    assert c["assigned_to"] is None
    url = f"/api/consultations/{c['id']}/assignee"
    async with http.put(url, json={"account_id": kim.id}, headers=sam.bearer) as r:
        assert r.status == 403  # not for another
    async with http.put(url, json={"account_id": sam.id}, headers=sam.bearer) as r:
        assert r.status == 200 and (await r.json())["assigned_to"] == sam.id
    async with http.put(url, json={"account_id": kim.id}, headers=kim.bearer) as r:
        assert r.status == 403  # Sam's now
    async with http.put(url, json={"account_id": kim.id}, headers=staff) as r:
        assert r.status == 200 and (await r.json())["assigned_to"] == kim.id
    async with http.put(url, json={"account_id": "nobody"}, headers=staff) as r:
        assert r.status == 404
    async with http.get(f"/api/consultations/{c['id']}", headers=sam.bearer) as r:
        assert r.status == 403


async def test_the_accounts_store(database_url: str, tmp_path: Path) -> None:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    try:
        accounts = store.accounts
        owner = await accounts.create(
            email="Olive@Example.com", name="Olive", role="owner", password_hash="h", actor="t"
        )
        with pytest.raises(AccountExists):
            await accounts.create(
                email="olive@example.com", name="O", role="stylist", password_hash="h", actor="t"
            )
        found = await accounts.by_email("OLIVE@example.com")
        assert found is not None and found[0].id == owner.id and found[1] == "h"
        with pytest.raises(LastOwner):
            await accounts.update(owner.id, {"disabled": True}, actor="t")
        stylist = await accounts.create(
            email="sam@example.com", name="Sam", role="stylist", password_hash="h", actor="t"
        )
        await accounts.add_key(stylist.id, "k", hash_token("ck_1"), actor="t")
        by_key = await accounts.by_key(hash_token("ck_1"))
        assert by_key is not None and by_key.id == stylist.id
        c, _links = await store.create_consultation(customer_name="A", link_ttl=timedelta(days=1))
        await accounts.assign(c.id, stylist.id, actor="t")
        assert (await store.get_consultation(c.id)).assigned_to == stylist.id
        listed = await store.list_consultations(reachable_by=stylist.id)
        assert [x.id for x in listed] == [c.id]
        other = await accounts.create(
            email="kim@example.com", name="Kim", role="stylist", password_hash="h", actor="t"
        )
        assert await store.list_consultations(reachable_by=other.id) == []
        with pytest.raises(NotFound):
            await accounts.assign("nope", stylist.id, actor="t")
        # Reset tokens: once, and not twice within the interval.
        now = datetime.now(UTC)
        hour = timedelta(hours=1)
        assert await accounts.add_reset(stylist.id, "t1", now + hour, unless_since=now - hour)
        assert not await accounts.add_reset(stylist.id, "t2", now + hour, unless_since=now - hour)
        used = await accounts.use_reset("t1", "new")
        assert used is not None and await accounts.password_hash(stylist.id) == "new"
        assert await accounts.use_reset("t1", "again") is None
    finally:
        await store.close()


def test_the_first_owner_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {**os.environ, "CONSULT_OWNER_PASSWORD": "owner password 1"}
    command = [sys.executable, "-m", "consult", "accounts", "create-owner", "--data", str(data),
               "--email", "Olive@Example.com", "--name", "Olive"]  # fmt: skip
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "olive@example.com" in made.stdout
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already" in again.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "consult", "accounts", "list", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "owner" in listed.stdout and "olive@example.com" in listed.stdout


async def test_a_stylists_live_inbox_hears_only_of_their_own_and_unassigned(
    http: aiohttp.ClientSession, server: TestServer, staff: dict[str, str]
) -> None:
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    sams = await create_consultation(http, staff, assigned_to=sam.id)
    open_one = await create_consultation(http, staff)
    listeners = {
        name: await http.ws_connect(server.make_url("/ws/inbox"), headers=member.bearer)
        for name, member in (("sam", sam), ("kim", kim))
    }
    try:
        for c in (sams, open_one):
            async with http.post(
                f"/api/consultations/{c['id']}/messages",
                json={"text": "Hi", "id": "m1"},
                headers=staff,
            ) as r:
                assert r.status == 201
        heard = {
            name: [(await ws.receive_json(timeout=10))["consultation_id"] for _ in range(n)]
            for (name, ws), n in zip(listeners.items(), (2, 1), strict=True)
        }
        assert heard == {"sam": [sams["id"], open_one["id"]], "kim": [open_one["id"]]}
        # Assigned to Kim now: Kim hears of it, Sam no longer does.
        async with http.put(
            f"/api/consultations/{sams['id']}/assignee", json={"account_id": kim.id}, headers=staff
        ) as r:
            assert r.status == 200
        async with http.post(
            f"/api/consultations/{sams['id']}/messages",
            json={"text": "Hi", "id": "m2"},
            headers=staff,
        ) as r:
            assert r.status == 201
        assert (await listeners["kim"].receive_json(timeout=10))["consultation_id"] == sams["id"]
        async with http.post(
            f"/api/consultations/{open_one['id']}/messages",
            json={"text": "Hi", "id": "m3"},
            headers=staff,
        ) as r:
            assert r.status == 201
        # Sam's next event is the open one's: nothing of Kim's came before it.
        assert (await listeners["sam"].receive_json(timeout=10))["consultation_id"] == open_one[
            "id"
        ]
    finally:
        for ws in listeners.values():
            await ws.close()
