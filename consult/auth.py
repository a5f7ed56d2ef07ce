"""Who is calling: the salon's staff (an account, an account's API key, the staff key, or a
signed-in session) or a participant (link).

Staff sign in on the dashboard with their account's email and password, or with the staff key;
the session lives in an encrypted, HTTP-only, SameSite=Strict cookie (aiohttp-session), Secure
when served over HTTPS. A session opened with the staff key remembers a fingerprint of the key,
so changing the key ends every such session; one opened with an account remembers when its
password was last changed, so a changed password (or a disabled account) ends it.

The staff key acts as an owner (automation keeps working). A stylist's account reaches only
its own and unassigned consultations (``caller_for``): another's is refused and audited.
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

from .appkeys import ACCOUNTS, AUDIT, STAFF_KEY, STORE
from .errors import Forbidden, NotFound, Unauthorized
from .recording.accounts import Account, StaffRole
from .recording.store import Grant
from .recording.tokens import hash_token

__all__ = [
    "API_KEY_PREFIX",
    "SIGN_IN",
    "STAFF_KEY_CALLER",
    "Caller",
    "account_caller",
    "any_caller",
    "bearer",
    "caller_for",
    "credential",
    "is_staff_key",
    "presents_credential",
    "reach",
    "refuse",
    "require_owner",
    "require_staff",
    "session_caller",
    "setup_sessions",
    "sign_in",
    "sign_in_account",
    "sign_out",
    "signed_in",
]

SESSION_COOKIE = "consult_staff"
SESSION_AGE = timedelta(hours=12)
#: The routes that take a credential in their body (method, path): they are limited like a
#: credential in a header (consult/ratelimit.py).
SIGN_IN = frozenset({("POST", "/api/session")})
#: How an account's API key starts (a staff key or link token never does).
API_KEY_PREFIX = "ck_"


@dataclass(frozen=True)
class Caller:
    #: staff, or the role of the consultation link presented.
    role: Literal["staff", "customer", "stylist"]
    #: Staff signed in with an account (or its API key); None: the staff key, or a link.
    account_id: str | None = None
    #: Staff's role: the staff key acts as an owner.
    staff_role: StaffRole | None = None
    #: A link holder's consultation.
    consultation_id: str | None = None
    #: Staff calling with an account's API key.
    api_key: bool = False

    @property
    def staff(self) -> bool:
        return self.role == "staff"

    @property
    def owner(self) -> bool:
        return self.staff_role == "owner"

    @property
    def actor(self) -> str:
        """Who this is in the audit log (consult/recording/audit.py)."""
        if not self.staff:
            prefix = "customer" if self.role == "customer" else "stylist-link"
            return f"{prefix}:{self.consultation_id}"
        if self.account_id is None:
            return "staff-key"
        return f"{'api-key' if self.api_key else 'account'}:{self.account_id}"

    def may_reach(self, assigned_to: str | None) -> bool:
        """Whether staff may reach a consultation assigned to ``assigned_to`` (None: nobody)."""
        return self.owner or assigned_to is None or assigned_to == self.account_id


STAFF_KEY_CALLER = Caller("staff", staff_role="owner")


def account_caller(account: Account, *, api_key: bool = False) -> Caller:
    return Caller("staff", account_id=account.id, staff_role=account.role, api_key=api_key)


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


async def session_caller(request: web.Request) -> Caller | None:
    """The staff member whose session this request carries, if any is still good."""
    if SESSION_COOKIE not in request.cookies:
        return None
    session = await aiohttp_session.get_session(request)
    if hmac.compare_digest(str(session.get("staff", "")), _fingerprint(request)):
        return STAFF_KEY_CALLER
    account_id = session.get("account")
    if not isinstance(account_id, str):
        return None
    try:
        account = await request.app[ACCOUNTS].get(account_id)
    except NotFound:
        return None
    stamp = account.password_changed_at.isoformat()
    if account.disabled or not hmac.compare_digest(str(session.get("since", "")), stamp):
        return None
    return account_caller(account)


async def signed_in(request: web.Request) -> bool:
    return await session_caller(request) is not None


async def sign_in(request: web.Request, staff_key: str) -> None:
    if not is_staff_key(request, staff_key):
        raise Unauthorized("That is not the staff key.")
    # A new session on sign-in: a session id planted before sign-in is never promoted.
    session = await aiohttp_session.new_session(request)
    session["staff"] = _fingerprint(request)


async def sign_in_account(request: web.Request, account: Account) -> None:
    """Open a session for ``account`` (its password checked by the caller)."""
    session = await aiohttp_session.new_session(request)
    session["account"] = account.id
    session["since"] = account.password_changed_at.isoformat()


async def sign_out(request: web.Request) -> None:
    session = await aiohttp_session.get_session(request)
    session.invalidate()


async def _bearer_staff(request: web.Request, value: str) -> Caller | None:
    """The staff member a Bearer credential names: the staff key, or an account's API key."""
    if is_staff_key(request, value):
        return STAFF_KEY_CALLER
    if value.startswith(API_KEY_PREFIX) and len(value) <= 256:
        account = await request.app[ACCOUNTS].by_key(hash_token(value))
        if account is not None:
            return account_caller(account, api_key=True)
    return None


async def require_staff(request: web.Request) -> Caller:
    # The staff key and API keys only ever in a header (or the session): never in a URL,
    # where they would be kept in histories and proxies' logs.
    value = bearer(request)
    if value is not None and (found := await _bearer_staff(request, value)) is not None:
        return found
    if credential(request) is None and (found := await session_caller(request)) is not None:
        return found
    raise Unauthorized()


async def require_owner(request: web.Request) -> Caller:
    """The salon's owner (an owner's account, or the staff key); a stylist is refused."""
    caller = await require_staff(request)
    if not caller.owner:
        await request.app[AUDIT].record(
            caller.actor, "refused", f"route:{request.method} {request.path}"
        )
        raise Forbidden("Only the salon's owner may do this.")
    return caller


async def _staff_or_grant(request: web.Request) -> Caller | Grant:
    value = credential(request)
    if value is None:
        if (found := await session_caller(request)) is not None:
            return found
        raise Unauthorized("A staff key or a consultation link is required.")
    if value == bearer(request) and (staff := await _bearer_staff(request, value)) is not None:
        return staff
    return await request.app[STORE].resolve_token(value)


async def any_caller(request: web.Request) -> Caller:
    """Staff, or the holder of any valid consultation link (for what every call may read)."""
    found = await _staff_or_grant(request)
    if isinstance(found, Caller):
        return found
    return Caller(found.role, consultation_id=found.consultation_id)


async def refuse(request: web.Request, caller: Caller, consultation_id: str) -> None:
    """Audit and refuse a caller reaching a consultation that is not theirs."""
    await request.app[AUDIT].record(
        caller.actor,
        "refused",
        f"consultation:{consultation_id}",
        detail={"route": f"{request.method} {request.path}"},
    )
    raise Forbidden("This consultation is another stylist's.")


async def reach(request: web.Request, caller: Caller, consultation_id: str) -> None:
    """Refuse (and audit) staff reaching another stylist's consultation."""
    if caller.staff and not caller.owner:
        assigned = await request.app[ACCOUNTS].assigned_to(consultation_id)
        if not caller.may_reach(assigned):
            await refuse(request, caller, consultation_id)


async def caller_for(request: web.Request, consultation_id: str) -> Caller:
    """Staff who may reach ``consultation_id``, or a participant whose link belongs to it."""
    found = await _staff_or_grant(request)
    if isinstance(found, Caller):
        await reach(request, found, consultation_id)
        return found
    if found.consultation_id != consultation_id:
        raise Forbidden("This link belongs to another consultation.")
    return Caller(found.role, consultation_id=found.consultation_id)
