"""The audit log: who did what to what, and when (issue 17).

An entry is ``(at, actor, action, subject, detail)``:

- ``actor``: ``account:<id>`` (signed in with an account), ``staff-key`` (the staff key, in a
  header or a session opened with it), ``api-key:<account id>``, ``customer:<consultation id>``
  and ``stylist-link:<consultation id>`` (link holders), ``system:<job>`` (the service itself,
  e.g. ``system:retention``), ``anonymous`` (a failed sign-in names no one).
- ``action``: one of ``ACTIONS`` (a closed set: a new kind of entry is added there, and in
  docs/operations.md).
- ``subject``: ``<kind>:<id>``: ``consultation:``, ``still:``, ``attachment:``, ``recording:``,
  ``customer:``, ``account:``, ``api-key:``, ``settings:<what>``, ``email:<address>`` (a failed
  sign-in's), ``audit:log``.
- ``detail``: a small JSON object, or nothing; never a password, token or file contents.

``record(..., conn=conn)`` writes inside the caller's transaction: an action and its entry
commit together or not at all. Entries older than the retention (``--audit-keep-days``) are
pruned by one node at a time (consult/recording/audit_pruning.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .schema import audit_log

__all__ = ["ACTIONS", "Action", "Audit", "AuditEntry", "AuditFilter", "AuditPage"]

Action = Literal[
    "viewed",
    "exported",
    "downloaded",
    "deleted",
    "revoked",
    "changed",
    "created",
    "assigned",
    "signed-in",
    "signed-out",
    "sign-in-failed",
    "password-changed",
    "password-reset",
    "refused",
    "merged",
    "retention-removed",
    # Appended by other features (keep appending, do not reorder):
    # issue 17B: a customer asked from their link to have their data deleted
    "deletion-requested",
    # issue 17B: a customer agreed to what the salon keeps
    "consented",
    # INT-2: a booking or a check-in scheduled, moved, cancelled
    "scheduled",
    "moved",
    "cancelled",
]
ACTIONS: frozenset[str] = frozenset(get_args(Action))

#: At most this many entries per page of ``entries``.
MAX_PAGE = 500


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditFilter:
    """Entries at or after ``since``, before ``until``, of exactly this actor and subject."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    #: Pass as ``before`` for the next (older) page; None: this was the last.
    next_before: int | None


class Audit:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        actor: str,
        action: str,
        subject: str,
        *,
        detail: Mapping[str, object] | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"not an audit action: {action!r}")
        statement = audit_log.insert().values(
            at=datetime.now(UTC),
            actor=actor[:128],
            action=action,
            subject=subject[:128],
            detail=dict(detail) if detail is not None else None,
        )
        if conn is not None:
            await conn.execute(statement)
            return
        async with self._db.begin() as own:
            await own.execute(statement)

    async def entries(
        self, filters: AuditFilter = AuditFilter(), *, before: int | None = None, limit: int = 100
    ) -> AuditPage:
        """The newest entries first, matching ``filters``; ``before``: ids below it."""
        c = audit_log.c
        query = sa.select(audit_log).order_by(c.id.desc()).limit(min(limit, MAX_PAGE) + 1)
        if filters.since is not None:
            query = query.where(c.at >= filters.since)
        if filters.until is not None:
            query = query.where(c.at < filters.until)
        if filters.actor is not None:
            query = query.where(c.actor == filters.actor)
        if filters.subject is not None:
            query = query.where(c.subject == filters.subject)
        if before is not None:
            query = query.where(c.id < before)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [AuditEntry(**row) for row in rows]
        page = found[: min(limit, MAX_PAGE)]
        more = len(found) > len(page)
        return AuditPage(page, page[-1].id if more and page else None)

    async def prune(self, before: datetime) -> int:
        """Delete the entries older than ``before``; how many went."""
        async with self._db.begin() as conn:
            result = await conn.execute(audit_log.delete().where(audit_log.c.at < before))
        return int(result.rowcount)
