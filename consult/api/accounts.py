"""Staff accounts (the owner manages them), one's own password, resets by email, API keys.

docs/protocol.md, Accounts.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import ACCOUNTS, AUDIT, NOTICES, SETTINGS, STORE
from ..auth import (
    API_KEY_PREFIX,
    Caller,
    any_caller,
    require_owner,
    require_staff,
    sign_in_account,
)
from ..errors import Forbidden, InvalidRequest, InvalidToken
from ..mail.compose import Email, render
from ..mail.notices import load_wording, unsubscribe_path
from ..passwords import MAX_PASSWORD, strong_hash, verify_password
from ..recording.accounts import StaffRole, account_email
from ..recording.outbox import NewMail
from ..recording.tokens import hash_token
from .common import read_json

__all__ = ["RESET_TTL", "routes"]

routes = web.RouteTableDef()

#: How long a reset link sent by email opens the form.
RESET_TTL = timedelta(hours=1)
#: At most one reset email per account this often: the form cannot be used to flood a mailbox.
RESET_EVERY = timedelta(minutes=5)

Password = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
EmailText = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class NewAccount(msgspec.Struct, forbid_unknown_fields=True):
    email: EmailText
    password: Password
    role: StaffRole
    name: Name


class AccountEdit(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    role: StaffRole | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET


class NewPassword(msgspec.Struct, forbid_unknown_fields=True):
    password: Password


class OwnPassword(msgspec.Struct, forbid_unknown_fields=True):
    current: Password
    password: Password


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: EmailText


class ResetUse(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    password: Password


class NewApiKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


@routes.get("/api/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    await require_owner(request)
    found = await request.app[ACCOUNTS].all()
    return web.json_response({"accounts": [a.to_json() for a in found]})


@routes.post("/api/accounts")
async def create_account(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    body = await read_json(request, NewAccount)
    account = await request.app[ACCOUNTS].create(
        email=account_email(body.email),
        name=body.name.strip(),
        role=body.role,
        password_hash=await strong_hash(body.password),
        actor=caller.actor,
    )
    return web.json_response(account.to_json(), status=201)


@routes.patch("/api/accounts/{id}")
async def edit_account(request: web.Request) -> web.Response:
    """The owner renames, changes the role of, disables or enables an account."""
    caller = await require_owner(request)
    body = await read_json(request, AccountEdit)
    values: dict[str, object] = {}
    if body.name is not msgspec.UNSET:
        values["name"] = body.name.strip()
    if body.role is not msgspec.UNSET:
        values["role"] = body.role
    if body.disabled is not msgspec.UNSET:
        values["disabled"] = body.disabled
    if not values:
        raise InvalidRequest("Nothing to change: send name, role or disabled.")
    account = await request.app[ACCOUNTS].update(
        request.match_info["id"], values, actor=caller.actor
    )
    return web.json_response(account.to_json())


@routes.put("/api/accounts/{id}/password")
async def reset_password(request: web.Request) -> web.Response:
    """The owner sets a stylist's (or any account's) new password; its sessions end."""
    caller = await require_owner(request)
    body = await read_json(request, NewPassword)
    account_id = request.match_info["id"]
    await request.app[ACCOUNTS].set_password(
        account_id, await strong_hash(body.password), actor=caller.actor, action="password-reset"
    )
    return web.Response(status=204)


@routes.get("/api/staff")
async def staff_names(request: web.Request) -> web.Response:
    """Who the salon's staff are (names and roles of enabled accounts): for whose-is-it labels
    and the assignment selector, to any staff and the stylist's console (its link)."""
    caller = await any_caller(request)
    if caller.role == "customer":
        raise Forbidden("The salon's staff list is the salon's.")
    found = await request.app[ACCOUNTS].all()
    return web.json_response(
        {"staff": [{"id": a.id, "name": a.name, "role": a.role} for a in found if not a.disabled]}
    )


def _own(caller: Caller) -> str:
    if caller.account_id is None:
        raise Forbidden("The staff key has no account: sign in with yours.")
    if caller.api_key:
        raise Forbidden("An API key cannot change its account's password or keys.")
    return caller.account_id


@routes.put("/api/account/password")
async def change_own_password(request: web.Request) -> web.Response:
    """Change one's own password, knowing the current one. Other sessions end; this one
    continues (it is opened again)."""
    caller = await require_staff(request)
    account_id = _own(caller)
    body = await read_json(request, OwnPassword)
    accounts = request.app[ACCOUNTS]
    if not await verify_password(await accounts.password_hash(account_id), body.current):
        raise Forbidden("The current password is not right.")
    await accounts.set_password(account_id, await strong_hash(body.password), actor=caller.actor)
    await sign_in_account(request, await accounts.get(account_id))
    return web.Response(status=204)


@routes.post("/api/password-resets")
async def request_reset(request: web.Request) -> web.Response:
    """Email a reset link to the account with this address, if there is one and email is set
    up. The answer is the same either way (202): it tells nobody which addresses have
    accounts."""
    body = await read_json(request, ResetRequest)
    notices = request.app[NOTICES]
    if not notices.configured:
        raise InvalidRequest("Email is not set up on this server: ask the salon's owner.")
    accounts = request.app[ACCOUNTS]
    found = await accounts.by_email(body.email.strip())
    now = datetime.now(UTC)
    if found is not None and not found[0].disabled:
        account = found[0]
        token = secrets.token_urlsafe(32)
        if await accounts.add_reset(
            account.id, hash_token(token), now + RESET_TTL, unless_since=now - RESET_EVERY
        ):
            await _queue_reset_email(request, account.email, account.name, token, now)
    return web.json_response({"sent": "if an account has this address"}, status=202)


async def _queue_reset_email(
    request: web.Request, address: str, name: str, token: str, now: datetime
) -> None:
    settings = request.app[SETTINGS]
    sender = settings.sender_address
    assert sender is not None
    words = load_wording(settings.mail_language)
    link = f"{settings.base_url}/reset#{token}"
    email = Email(
        to=address,
        subject=words["password-reset.subject"],
        text=words["password-reset.text"].format(
            name=name, link=link, minutes=int(RESET_TTL.total_seconds() // 60)
        ),
        footer=words["footer"],
    )

    def build(unsubscribe: str) -> bytes:
        url = f"{settings.base_url}{unsubscribe_path(unsubscribe)}"
        return render(email, sender=sender, unsubscribe_url=url, now=now)

    await request.app[STORE].outbox.queue(NewMail(address, "password-reset", build, now), now)
    request.app[NOTICES].queued.set()


@routes.post("/api/password-resets/use")
async def use_reset(request: web.Request) -> web.Response:
    """Set a new password with the token from the reset email (once; it expires)."""
    body = await read_json(request, ResetUse)
    new_hash = await strong_hash(body.password)
    account = await request.app[ACCOUNTS].use_reset(hash_token(body.token), new_hash)
    if account is None:
        raise InvalidToken("This reset link is unknown, used or expired: ask for a new one.")
    return web.Response(status=204)


@routes.get("/api/api-keys")
async def list_keys(request: web.Request) -> web.Response:
    """One's own API keys (the owner's: everyone's)."""
    caller = await require_staff(request)
    accounts = request.app[ACCOUNTS]
    if not caller.owner and caller.account_id is None:
        raise Forbidden("The staff key has no account: sign in with yours.")
    keys = await accounts.keys(None if caller.owner else caller.account_id)
    return web.json_response({"api_keys": [k.to_json() for k in keys]})


@routes.post("/api/api-keys")
async def create_key(request: web.Request) -> web.Response:
    """A new API key for one's own account, signed in (a key makes no keys): shown once, in
    this answer."""
    caller = await require_staff(request)
    account_id = _own(caller)
    body = await read_json(request, NewApiKey)
    value = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = await request.app[ACCOUNTS].add_key(
        account_id, body.name.strip(), hash_token(value), actor=caller.actor
    )
    return web.json_response(key.to_json() | {"key": value}, status=201)


@routes.delete("/api/api-keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    accounts = request.app[ACCOUNTS]
    key = await accounts.get_key(request.match_info["id"])
    if not caller.owner and key.account_id != caller.account_id:
        await request.app[AUDIT].record(caller.actor, "refused", f"api-key:{key.id}")
        raise Forbidden("This is another account's key.")
    await accounts.revoke_key(key.id, actor=caller.actor)
    return web.Response(status=204)
