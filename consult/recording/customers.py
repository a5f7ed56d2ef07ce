"""The salon's customers (issue 17): one record per person, every consultation pointing to one.

A customer is created on the dashboard, by booking or with a consultation; ``find_or_create``
matches an existing customer by their normalised email or phone, so booking twice with the same
address finds the same person. A duplicate merged into another keeps its row only to send its
id on (``merged_into``): ``get`` follows it, lists leave it out.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import InvalidRequest, MergeIntoItself, NotFound
from .audit import Audit
from .database import Database
from .schema import consents, consultations, customers

__all__ = ["Customer", "Customers", "email_key", "phone_key"]

#: What a phone number may be written with: digits, spaces, + ( ) - . /
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
#: How many customers a search returns at most.
SEARCH_LIMIT = 50
#: The columns copied onto each of a customer's consultations (read there by v1 clients, the
#: inbox's search and the emails).
_COPIED = {"name": "customer_name", "email": "customer_email", "language": "customer_language",
           "external_ref": "customer_ref"}  # fmt: skip


def utcnow() -> datetime:
    return datetime.now(UTC)


def email_key(email: str | None) -> str | None:
    """The form two addresses of one person share (case does not matter in practice)."""
    return email.strip().lower() if email and email.strip() else None


def phone_key(phone: str | None) -> str | None:
    """The digits of a phone number (and its leading +): "+44 20 7946-0000" and
    "+442079460000" are one number. InvalidRequest for what is no phone number."""
    if phone is None or not phone.strip():
        return None
    if not _PHONE.match(phone.strip()):
        raise InvalidRequest("phone: digits, spaces and + ( ) - . / only (3 to 40 characters).")
    digits = re.sub(r"[^0-9]", "", phone)
    if len(digits) < 3:
        raise InvalidRequest("phone: at least 3 digits.")
    return ("+" if phone.strip().startswith("+") else "") + digits


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str | None
    phone: str | None
    language: str | None
    notes: str
    external_ref: str | None
    created_at: datetime
    updated_at: datetime
    merged_into: str | None = None
    deletion_requested_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """What staff see (the customer never sees their record's notes)."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "language": self.language,
            "notes": self.notes,
            "external_ref": self.external_ref,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deletion_requested_at": _iso(self.deletion_requested_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class Customers:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.asynccontextmanager
    async def _writing(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """``conn``'s transaction where the caller has one (a consultation created with its
        customer), else one of our own."""
        if conn is not None:
            yield conn
            return
        async with self._db.begin() as own:
            yield own

    async def create(
        self,
        *,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        language: str | None = None,
        external_ref: str | None = None,
        notes: str = "",
        conn: AsyncConnection | None = None,
    ) -> Customer:
        name = name.strip()
        if not name:
            raise InvalidRequest("name: the customer's name is required.")
        now = utcnow()
        customer = Customer(
            id=secrets.token_hex(8),
            name=name,
            email=email or None,
            phone=phone.strip() if phone and phone.strip() else None,
            language=language,
            notes=notes,
            external_ref=external_ref or None,
            created_at=now,
            updated_at=now,
        )
        row = customer.__dict__ | {"email_key": email_key(email), "phone_key": phone_key(phone)}
        async with self._writing(conn) as c:
            await c.execute(customers.insert().values(**row))
        return customer

    async def find_or_create(
        self,
        *,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> Customer:
        """The customer with this email or phone (normalised), else a new one."""
        keys = [
            column == key
            for column, key in (
                (customers.c.email_key, email_key(email)),
                (customers.c.phone_key, phone_key(phone)),
            )
            if key is not None
        ]
        async with self._writing(conn) as c:
            if keys:
                row = (
                    (
                        await c.execute(
                            customers.select()
                            .where(sa.or_(*keys), customers.c.merged_into.is_(None))
                            .order_by(customers.c.created_at, customers.c.id)
                            .limit(1)
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is not None:
                    return _customer(row)
            return await self.create(name=name, email=email, phone=phone, conn=c)

    async def find_by_ref(
        self, external_ref: str, conn: AsyncConnection | None = None
    ) -> Customer | None:
        """The customer with the salon's reference ``external_ref`` (the oldest, if several)."""
        query = (
            customers.select()
            .where(customers.c.external_ref == external_ref, customers.c.merged_into.is_(None))
            .order_by(customers.c.created_at, customers.c.id)
            .limit(1)
        )
        if conn is not None:
            row = (await conn.execute(query)).mappings().first()
        else:
            async with self._db.connect() as own:
                row = (await own.execute(query)).mappings().first()
        return _customer(row) if row is not None else None

    async def get(self, customer_id: str, conn: AsyncConnection | None = None) -> Customer:
        """The customer; a merged duplicate's id gives the customer it was merged into."""
        if conn is None:
            async with self._db.connect() as own:
                return await self.get(customer_id, own)
        for _ in range(8):  # merges chain at most a few times; never loop on bad data
            row = (
                (await conn.execute(customers.select().where(customers.c.id == customer_id)))
                .mappings()
                .first()
            )
            if row is None:
                break
            if row["merged_into"] is None:
                return _customer(row)
            customer_id = row["merged_into"]
        raise NotFound("No such customer.")

    async def search(self, q: str = "", *, limit: int = SEARCH_LIMIT) -> list[Customer]:
        """Customers whose name, email, phone or reference contains ``q`` (any case; a phone
        by its digits too), most recently changed first; every customer for an empty ``q``."""
        c = customers.c
        query = customers.select().where(c.merged_into.is_(None))
        needle = q.strip().lower()
        if needle:
            found = [
                sa.func.lower(c.name).contains(needle, autoescape=True),
                c.email_key.contains(needle, autoescape=True),
                sa.func.lower(c.external_ref).contains(needle, autoescape=True),
            ]
            digits = re.sub(r"[^0-9]", "", needle)
            if len(digits) >= 3:
                found.append(c.phone_key.contains(digits, autoescape=True))
            query = query.where(sa.or_(*found))
        query = query.order_by(c.updated_at.desc(), c.id).limit(limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_customer(row) for row in rows]

    async def update(
        self, customer_id: str, values: dict[str, Any], conn: AsyncConnection | None = None
    ) -> Customer:
        """Change the fields named in ``values`` (name, email, phone, language, notes,
        external_ref); the copies on the customer's consultations follow."""
        values = dict(values)
        if "name" in values:
            values["name"] = str(values["name"]).strip()
            if not values["name"]:
                raise InvalidRequest("name: the customer's name is required.")
        if "email" in values:
            values["email_key"] = email_key(values["email"])
        if "phone" in values:
            values["phone_key"] = phone_key(values["phone"])
            values["phone"] = values["phone"].strip() if values["phone"] else None
        async with self._writing(conn) as c:
            current = await self.get(customer_id, c)
            await c.execute(
                customers.update()
                .where(customers.c.id == current.id)
                .values(**values, updated_at=utcnow())
            )
            copied = {_COPIED[k]: v for k, v in values.items() if k in _COPIED}
            if copied:
                await c.execute(
                    consultations.update()
                    .where(consultations.c.customer_id == current.id)
                    .values(**copied)
                )
            return await self.get(current.id, c)

    async def merge(self, source_id: str, into_id: str, *, audit: Audit, actor: str) -> Customer:
        """Merge the duplicate ``source_id`` into ``into_id``: its consultations and consents
        move, details ``into_id`` lacks are taken from it, and its id forwards from now on.
        MergeIntoItself for one customer twice (whatever ids name it)."""
        async with self._db.begin() as conn:
            source = await self.get(source_id, conn)
            into = await self.get(into_id, conn)
            if source.id == into.id:
                raise MergeIntoItself()
            filled = {
                name: getattr(source, name)
                for name in ("email", "phone", "language", "external_ref")
                if getattr(into, name) is None and getattr(source, name) is not None
            }
            if source.notes and source.notes not in into.notes:
                filled["notes"] = f"{into.notes}\n\n{source.notes}".strip()
            if filled:
                await self.update(into.id, filled, conn=conn)
            moved = await conn.execute(
                consultations.update()
                .where(consultations.c.customer_id == source.id)
                .values(customer_id=into.id)
            )
            await conn.execute(
                consents.update()
                .where(consents.c.customer_id == source.id)
                .values(customer_id=into.id)
            )
            await conn.execute(
                customers.update()
                .where(customers.c.id == source.id)
                .values(merged_into=into.id, updated_at=utcnow())
            )
            await self._copy_to_consultations(conn, await self.get(into.id, conn))
            await audit.record(
                actor, "merged", f"customer:{source.id}",
                detail={"into": into.id, "consultations": moved.rowcount}, conn=conn,
            )  # fmt: skip
            return await self.get(into.id, conn)

    async def _copy_to_consultations(self, conn: AsyncConnection, customer: Customer) -> None:
        await conn.execute(
            consultations.update()
            .where(consultations.c.customer_id == customer.id)
            .values(**{column: getattr(customer, name) for name, column in _COPIED.items()})
        )

    async def request_deletion(self, customer_id: str, *, audit: Audit, actor: str) -> Customer:
        """The customer asked, from their link, to have their data deleted; the audit entry
        is written in the same transaction (never a request without it, nor it without one)."""
        async with self._db.begin() as conn:
            current = await self.get(customer_id, conn)
            if current.deletion_requested_at is None:
                await conn.execute(
                    customers.update()
                    .where(customers.c.id == current.id)
                    .values(deletion_requested_at=utcnow())
                )
            await audit.record(actor, "deletion-requested", f"customer:{current.id}", conn=conn)
            return await self.get(current.id, conn)


def _customer(row: Any) -> Customer:
    return Customer(**{name: row[name] for name in Customer.__dataclass_fields__})
