"""Consent: what the customer agreed the salon keeps, before joining a call (issue 17).

Each agreement is kept with the version of the wording the customer was shown, what it
covered and when, for the consultation and its customer. The wording itself is in the pages'
catalogues (``consent.*`` in web/i18n): a change to it comes with a new ``VERSION``, and a
customer who agreed to an older one is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidRequest, NotFound
from .audit import Audit
from .database import Database
from .schema import consents, consultations

__all__ = ["KEPT", "VERSION", "Consent", "Consents"]

#: The wording's version (web/i18n's ``consent.*``): new wording, new version.
VERSION = "2026-11-29"
#: What the salon keeps, as the wording lists it.
KEPT = ("stills", "messages", "recordings")


@dataclass(frozen=True)
class Consent:
    customer_id: str
    consultation_id: str
    version: str
    kept: list[str]
    given_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "kept": self.kept, "given_at": self.given_at.isoformat()}


class Consents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def give(
        self, consultation_id: str, version: str, *, audit: Audit, actor: str
    ) -> Consent:
        """The customer of ``consultation_id`` agrees to the wording ``version`` (the current
        one only: a page showing an older wording must show the new one first); the audit
        entry is written in the same transaction, so neither is ever kept without the other."""
        if version != VERSION:
            raise InvalidRequest(f"version: the current wording is {VERSION}; reload the page.")
        async with self._db.begin() as conn:
            customer_id = await conn.scalar(
                sa.select(consultations.c.customer_id).where(consultations.c.id == consultation_id)
            )
            if customer_id is None:
                raise NotFound("No such consultation.")
            consent = Consent(customer_id, consultation_id, version, list(KEPT), datetime.now(UTC))
            await conn.execute(consents.insert().values(**consent.__dict__))
            await audit.record(
                actor, "consented", f"customer:{customer_id}",
                detail={"version": version, "consultation": consultation_id}, conn=conn,
            )  # fmt: skip
        return consent

    async def current(self, consultation_id: str) -> Consent | None:
        """The latest agreement to the current wording for this consultation, if any."""
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        consents.select()
                        .where(
                            consents.c.consultation_id == consultation_id,
                            consents.c.version == VERSION,
                        )
                        .order_by(consents.c.given_at.desc(), consents.c.id.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
        return _consent(row) if row is not None else None

    async def of_customer(self, customer_id: str) -> list[Consent]:
        """Every agreement of the customer, newest first."""
        async with self._db.connect() as conn:
            rows = await conn.execute(
                consents.select()
                .where(consents.c.customer_id == customer_id)
                .order_by(consents.c.given_at.desc(), consents.c.id.desc())
            )
            return [_consent(row) for row in rows.mappings()]


def _consent(row: Any) -> Consent:
    return Consent(**{name: row[name] for name in Consent.__dataclass_fields__})
