"""Staff accounts, their password resets and their API keys (issue 17).

Passwords arrive here already hashed (consult/passwords.py); reset tokens and API keys only
as their SHA-256 (tokens.hash_token). Every change is written to the audit log in the same
transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa

from ..errors import AccountExists, LastOwner, NotFound
from .audit import Audit
from .database import Database
from .schema import accounts, api_keys, consultations, password_resets

__all__ = ["STAFF_ROLES", "Account", "Accounts", "ApiKey", "StaffRole"]

StaffRole = Literal["owner", "stylist"]
STAFF_ROLES: tuple[StaffRole, ...] = get_args(StaffRole)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    name: str
    role: StaffRole
    disabled_at: datetime | None
    created_at: datetime
    #: Sessions opened before it end (auth.py): a changed password signs everyone out.
    password_changed_at: datetime

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class ApiKey:
    id: str
    account_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked": self.revoked_at is not None,
        }


def _account(row: Any) -> Account:
    return Account(**{name: row[name] for name in Account.__dataclass_fields__})


def _api_key(row: Any) -> ApiKey:
    return ApiKey(**{name: row[name] for name in ApiKey.__dataclass_fields__})


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._audit = Audit(db)

    async def create(
        self, *, email: str, name: str, role: StaffRole, password_hash: str, actor: str
    ) -> Account:
        now = _now()
        account = Account(
            id=secrets.token_hex(8),
            email=email.lower(),
            name=name,
            role=role,
            disabled_at=None,
            created_at=now,
            password_changed_at=now,
        )
        try:
            async with self._db.begin() as conn:
                await conn.execute(
                    accounts.insert().values(
                        id=account.id,
                        email=account.email,
                        name=name,
                        role=role,
                        password_hash=password_hash,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
                await self._audit.record(
                    actor, "created", f"account:{account.id}", detail={"role": role}, conn=conn
                )
        except sa.exc.IntegrityError as exc:
            raise AccountExists() from exc
        return account

    async def get(self, account_id: str) -> Account:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(accounts.select().where(accounts.c.id == account_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such account.")
        return _account(row)

    async def by_email(self, email: str) -> tuple[Account, str] | None:
        """The account with ``email`` (any case) and its password hash."""
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(accounts.select().where(accounts.c.email == email.lower())))
                .mappings()
                .first()
            )
        return None if row is None else (_account(row), row["password_hash"])

    async def password_hash(self, account_id: str) -> str:
        async with self._db.connect() as conn:
            value = await conn.scalar(
                sa.select(accounts.c.password_hash).where(accounts.c.id == account_id)
            )
        if value is None:
            raise NotFound("No such account.")
        return str(value)

    async def all(self) -> list[Account]:
        async with self._db.connect() as conn:
            rows = (
                (await conn.execute(accounts.select().order_by(accounts.c.created_at)))
                .mappings()
                .all()
            )
        return [_account(row) for row in rows]

    async def any(self) -> bool:
        async with self._db.connect() as conn:
            return (await conn.scalar(sa.select(sa.func.count()).select_from(accounts))) != 0

    async def set_disabled(self, account_id: str, disabled: bool, *, actor: str) -> Account:
        async with self._db.begin() as conn:
            if disabled:
                await self._keep_an_owner(conn, account_id)
            result = await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(disabled_at=_now() if disabled else None)
            )
            if result.rowcount == 0:
                raise NotFound("No such account.")
            await self._audit.record(
                actor,
                "changed",
                f"account:{account_id}",
                detail={"disabled": disabled},
                conn=conn,
            )
        return await self.get(account_id)

    async def _keep_an_owner(self, conn: Any, account_id: str) -> None:
        c = accounts.c
        others = await conn.scalar(
            sa.select(sa.func.count()).where(
                c.role == "owner", c.disabled_at.is_(None), c.id != account_id
            )
        )
        role = await conn.scalar(sa.select(c.role).where(c.id == account_id))
        if role == "owner" and others == 0:
            raise LastOwner()

    async def set_password(
        self, account_id: str, password_hash: str, *, actor: str, action: str = "password-changed"
    ) -> None:
        async with self._db.begin() as conn:
            result = await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash, password_changed_at=_now())
            )
            if result.rowcount == 0:
                raise NotFound("No such account.")
            await self._audit.record(actor, action, f"account:{account_id}", conn=conn)

    # password resets by email

    async def add_reset(self, account_id: str, token_hash: str, expires_at: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                password_resets.insert().values(
                    token_hash=token_hash,
                    account_id=account_id,
                    created_at=_now(),
                    expires_at=expires_at,
                )
            )

    async def use_reset(self, token_hash: str, password_hash: str) -> Account | None:
        """Set the password of the reset's account, once: None if the token is unknown, used,
        expired, or its account disabled."""
        now = _now()
        r = password_resets.c
        async with self._db.begin() as conn:
            account_id = await conn.scalar(
                sa.select(r.account_id)
                .join(accounts, accounts.c.id == r.account_id)
                .where(
                    r.token_hash == token_hash,
                    r.used_at.is_(None),
                    r.expires_at > now,
                    accounts.c.disabled_at.is_(None),
                )
            )
            if account_id is None:
                return None
            # Every outstanding reset of the account ends with the one used.
            await conn.execute(
                password_resets.update()
                .where(r.account_id == account_id, r.used_at.is_(None))
                .values(used_at=now)
            )
            await conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash, password_changed_at=now)
            )
            await self._audit.record(
                f"account:{account_id}", "password-reset", f"account:{account_id}", conn=conn
            )
        return await self.get(account_id)

    # API keys

    async def add_key(self, account_id: str, name: str, key_hash: str, *, actor: str) -> ApiKey:
        key = ApiKey(secrets.token_hex(8), account_id, name, _now(), None)
        async with self._db.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    account_id=account_id,
                    name=name,
                    key_hash=key_hash,
                    created_at=key.created_at,
                )
            )
            await self._audit.record(
                actor, "created", f"api-key:{key.id}", detail={"account": account_id}, conn=conn
            )
        return key

    async def keys(self, account_id: str | None = None) -> list[ApiKey]:
        query = api_keys.select().order_by(api_keys.c.created_at)
        if account_id is not None:
            query = query.where(api_keys.c.account_id == account_id)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_api_key(row) for row in rows]

    async def get_key(self, key_id: str) -> ApiKey:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(api_keys.select().where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such API key.")
        return _api_key(row)

    async def revoke_key(self, key_id: str, *, actor: str) -> None:
        async with self._db.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            if result.rowcount == 0:
                raise NotFound("No such API key.")
            await self._audit.record(actor, "revoked", f"api-key:{key_id}", conn=conn)

    async def by_key(self, key_hash: str) -> Account | None:
        """The enabled account whose unrevoked API key hashes to ``key_hash``."""
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(accounts)
                        .join(api_keys, api_keys.c.account_id == accounts.c.id)
                        .where(
                            api_keys.c.key_hash == key_hash,
                            api_keys.c.revoked_at.is_(None),
                            accounts.c.disabled_at.is_(None),
                        )
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _account(row)

    # assignment

    async def assign(self, consultation_id: str, account_id: str | None, *, actor: str) -> None:
        """Assign the consultation to a stylist's account (None: unassign)."""
        async with self._db.begin() as conn:
            if account_id is not None:
                found = await conn.scalar(
                    sa.select(accounts.c.id).where(
                        accounts.c.id == account_id, accounts.c.disabled_at.is_(None)
                    )
                )
                if found is None:
                    raise NotFound("No such account.")
            result = await conn.execute(
                consultations.update()
                .where(consultations.c.id == consultation_id)
                .values(assigned_to=account_id)
            )
            if result.rowcount == 0:
                raise NotFound("No such consultation.")
            await self._audit.record(
                actor,
                "assigned",
                f"consultation:{consultation_id}",
                detail={"to": account_id},
                conn=conn,
            )

    async def assigned_to(self, consultation_id: str) -> str | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(consultations.c.assigned_to).where(
                        consultations.c.id == consultation_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound("No such consultation.")
        return None if row[0] is None else str(row[0])
