"""Staff accounts for tests: made through the real store, each with an API key (for the
access matrix) or signed in with its password (for sessions and pages)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from consult.appkeys import ACCOUNTS
from consult.auth import API_KEY_PREFIX
from consult.passwords import hash_password
from consult.recording.accounts import StaffRole
from consult.recording.tokens import hash_token

PASSWORD = "correct horse battery"
_hashes: dict[str, str] = {}


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def add_member(app: web.Application, role: StaffRole, name: str) -> Member:
    """An account with ``PASSWORD`` and an API key (argon2 hashed once per test process: it
    takes a core tens of milliseconds on purpose)."""
    if PASSWORD not in _hashes:
        _hashes[PASSWORD] = await hash_password(PASSWORD)
    accounts = app[ACCOUNTS]
    email = f"{name.lower()}-{secrets.token_hex(3)}@example.com"
    account = await accounts.create(
        email=email, name=name, role=role, password_hash=_hashes[PASSWORD], actor="system:test"
    )
    key = API_KEY_PREFIX + secrets.token_urlsafe(16)
    await accounts.add_key(account.id, "tests", hash_token(key), actor="system:test")
    return Member(account.id, email, key)


async def sign_in(http: aiohttp.ClientSession, email: str, password: str = PASSWORD) -> Any:
    async with http.post("/api/session", json={"email": email, "password": password}) as r:
        assert r.status == 200, await r.text()
        return await r.json()
