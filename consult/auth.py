"""Who is calling: the salon's staff (staff key, or a signed-in session) or a participant (link).

Staff sign in on the dashboard with the staff key; the session lives in an encrypted,
HTTP-only, SameSite=Strict cookie (aiohttp-session), Secure when served over HTTPS. A session
remembers a fingerprint of the key it was opened with, so changing the key ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import aiohttp_session
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from .appkeys import STAFF_KEY, STORE
from .errors import Forbidden, Unauthorized
from .recording.store import Grant

__all__ = [
    "SIGN_IN",
    "Caller",
    "any_caller",
    "bearer",
    "caller_for",
    "credential",
    "is_staff_key",
    "presents_credential",
    "require_staff",
    "setup_sessions",
    "sign_in",
    "sign_out",
    "signed_in",
]

SESSION_COOKIE = "consult_staff"
SESSION_AGE = timedelta(hours=12)
#: The routes that take a credential in their body (method, path): they are limited like a
#: credential in a header (consult/ratelimit.py).
SIGN_IN = frozenset({("POST", "/api/session")})


@dataclass(frozen=True)
class Caller:
    role: Literal["staff", "customer", "stylist"]

    @property
    def staff(self) -> bool:
        return self.role == "staff"


def setup_sessions(app: web.Application, key: bytes, *, secure: bool) -> None:
    storage = EncryptedCookieStorage(
        Fernet(key),
        cookie_name=SESSION_COOKIE,
        httponly=True,
        samesite="Strict",
        secure=secure,
        max_age=int(SESSION_AGE.total_seconds()),
    )
    aiohttp_session.setup(app, storage)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def credential(request: web.Request) -> str | None:
    """The Bearer credential, else a ``token`` query parameter (for <img> and links)."""
    return bearer(request) or request.query.get("token") or None


def presents_credential(request: web.Request) -> bool:
    """Whether ``request`` presents a staff key or link token, wherever it carries it."""
    return (
        "Authorization" in request.headers
        or "token" in request.query
        or request.match_info.get("token") is not None
        or (request.method, request.path) in SIGN_IN
    )


def _fingerprint(request: web.Request) -> str:
    return hashlib.sha256(b"consult-staff:" + request.app[STAFF_KEY].encode()).hexdigest()[:32]


def is_staff_key(request: web.Request, value: str) -> bool:
    return hmac.compare_digest(value.encode(), request.app[STAFF_KEY].encode())


async def signed_in(request: web.Request) -> bool:
    if SESSION_COOKIE not in request.cookies:
        return False
    session = await aiohttp_session.get_session(request)
    return hmac.compare_digest(str(session.get("staff", "")), _fingerprint(request))


async def sign_in(request: web.Request, staff_key: str) -> None:
    if not is_staff_key(request, staff_key):
        raise Unauthorized("That is not the staff key.")
    # A new session on sign-in: a session id planted before sign-in is never promoted.
    session = await aiohttp_session.new_session(request)
    session["staff"] = _fingerprint(request)


async def sign_out(request: web.Request) -> None:
    session = await aiohttp_session.get_session(request)
    session.invalidate()


async def require_staff(request: web.Request) -> Caller:
    # The staff key only ever in a header (or the session): never in a URL, where it would be
    # kept in histories and proxies' logs.
    value = bearer(request)
    if value is not None and is_staff_key(request, value):
        return Caller("staff")
    if credential(request) is None and await signed_in(request):
        return Caller("staff")
    raise Unauthorized()


async def _staff_or_grant(request: web.Request) -> Caller | Grant:
    value = credential(request)
    if value is None:
        if await signed_in(request):
            return Caller("staff")
        raise Unauthorized("A staff key or a consultation link is required.")
    if value == bearer(request) and is_staff_key(request, value):
        return Caller("staff")
    return await request.app[STORE].resolve_token(value)


async def any_caller(request: web.Request) -> Caller:
    """Staff, or the holder of any valid consultation link (for what every call may read)."""
    found = await _staff_or_grant(request)
    return found if isinstance(found, Caller) else Caller(found.role)


async def caller_for(request: web.Request, consultation_id: str) -> Caller:
    """Staff, or a participant whose link belongs to ``consultation_id``."""
    found = await _staff_or_grant(request)
    if isinstance(found, Caller):
        return found
    if found.consultation_id != consultation_id:
        raise Forbidden("This link belongs to another consultation.")
    return Caller(found.role)
