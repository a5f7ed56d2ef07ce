"""Staff sign-in on the dashboard (an account, or the staff key), and the health check."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import ACCOUNTS, AUDIT, NODE, STORE
from ..auth import (
    STAFF_KEY_CALLER,
    credential,
    session_caller,
    sign_in,
    sign_in_account,
    sign_out,
)
from ..errors import InvalidRequest, InvalidToken, Unauthorized
from ..passwords import MAX_PASSWORD, verify_nothing, verify_password
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


Password = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD)]

#: One answer for an unknown email, a wrong password and a disabled account.
WRONG = "That email and password do not match an account."


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """The staff key, or an account's email and password."""

    staff_key: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)] | None = None
    password: Password | None = None


@routes.get("/api/session")
async def get_session(request: web.Request) -> web.Response:
    """Whether this browser is signed in, and as whom (``account`` is null for the staff
    key: it acts as an owner)."""
    caller = await session_caller(request)
    if caller is None:
        return web.json_response({"staff": False})
    account = None
    if caller.account_id is not None:
        account = (await request.app[ACCOUNTS].get(caller.account_id)).to_json()
    return web.json_response({"staff": True, "role": caller.staff_role, "account": account})


@routes.post("/api/session")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, SignIn)
    audit = request.app[AUDIT]
    if body.staff_key is not None:
        if body.email is not None or body.password is not None:
            raise InvalidRequest("Send the staff key, or an email and password: not both.")
        try:
            await sign_in(request, body.staff_key)
        except Unauthorized:
            await audit.record("anonymous", "sign-in-failed", "staff-key")
            raise
        await audit.record(STAFF_KEY_CALLER.actor, "signed-in", "staff-key")
        return web.json_response({"staff": True, "role": "owner", "account": None})
    if body.email is None or body.password is None:
        raise InvalidRequest("Send an email and a password (or the staff key).")
    found = await request.app[ACCOUNTS].by_email(body.email.strip())
    if found is None:
        await verify_nothing(body.password)
        await audit.record("anonymous", "sign-in-failed", f"email:{body.email.strip().lower()}")
        raise Unauthorized(WRONG)
    account, encoded = found
    if not await verify_password(encoded, body.password) or account.disabled:
        await audit.record("anonymous", "sign-in-failed", f"account:{account.id}")
        raise Unauthorized(WRONG)
    await sign_in_account(request, account)
    await audit.record(f"account:{account.id}", "signed-in", f"account:{account.id}")
    return web.json_response({"staff": True, "role": account.role, "account": account.to_json()})


@routes.delete("/api/session")
async def delete_session(request: web.Request) -> web.Response:
    caller = await session_caller(request)
    await sign_out(request)
    if caller is not None:
        subject = "staff-key" if caller.account_id is None else f"account:{caller.account_id}"
        await request.app[AUDIT].record(caller.actor, "signed-out", subject)
    return web.json_response({"staff": False})


@routes.get("/api/link")
async def link(request: web.Request) -> web.Response:
    """What a link token opens: its consultation and role (for pages that only have the link)."""
    value = credential(request)
    if value is None:
        raise InvalidToken()
    grant = await request.app[STORE].resolve_token(value)
    return web.json_response({"consultation_id": grant.consultation_id, "role": grant.role})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """``ok`` once the server and its database answer; ``draining`` (503) from SIGTERM on, so
    a load balancer takes the node out of its pool while its calls move elsewhere."""
    await request.app[STORE].ping()
    if request.app[NODE].draining:
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ok"})
