"""Who is calling: the salon's staff (staff key) or a consultation's participant (link token)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from .appkeys import STAFF_KEY, STORE
from .errors import Forbidden, Unauthorized

__all__ = ["Caller", "caller_for", "credential", "require_staff"]


@dataclass(frozen=True)
class Caller:
    role: Literal["staff", "customer", "stylist"]

    @property
    def staff(self) -> bool:
        return self.role == "staff"


def credential(request: web.Request) -> str | None:
    """The Bearer credential, else a ``token`` query parameter (for <img> and links)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def _is_staff_key(request: web.Request, value: str) -> bool:
    return hmac.compare_digest(value.encode(), request.app[STAFF_KEY].encode())


def require_staff(request: web.Request) -> Caller:
    value = credential(request)
    if value is None or not _is_staff_key(request, value):
        raise Unauthorized()
    return Caller("staff")


async def caller_for(request: web.Request, consultation_id: str) -> Caller:
    """Staff, or a participant whose link belongs to ``consultation_id``."""
    value = credential(request)
    if value is None:
        raise Unauthorized("A staff key or a consultation link is required.")
    if _is_staff_key(request, value):
        return Caller("staff")
    grant = await request.app[STORE].resolve_token(value)
    if grant.consultation_id != consultation_id:
        raise Forbidden("This link belongs to another consultation.")
    return Caller(grant.role)
