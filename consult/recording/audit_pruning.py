"""Pruning the audit log: entries older than ``--audit-keep-days`` go, once an hour, by one
node at a time (the ``audit-prune`` lease, consult/recording/leases.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .audit import Audit
from .leases import Leases, holder_name

__all__ = ["AuditPruning"]

logger = logging.getLogger(__name__)

LEASE = "audit-prune"
EVERY = timedelta(hours=1)
LEASE_TTL = timedelta(minutes=5)
POLL = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


class AuditPruning:
    def __init__(
        self,
        audit: Audit,
        leases: Leases,
        keep: timedelta,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._audit = audit
        self._leases = leases
        self.keep = keep
        self._clock = clock
        self._holder = holder_name()
        self._task: asyncio.Task[None] | None = None

    async def run_due(self) -> int | None:
        """Prune if due here and now: how many entries went, or None (not due, or another
        node is at it)."""
        now = self._clock()
        if not await self._leases.take(LEASE, self._holder, now, LEASE_TTL, EVERY):
            return None
        done_at: datetime | None = None
        try:
            removed = await self._audit.prune(now - self.keep)
            done_at = now
        finally:
            await asyncio.shield(self._leases.release(LEASE, self._holder, done_at))
        if removed:
            logger.info("audit log: %d entries older than %s removed", removed, self.keep)
        return removed

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit pruning")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("audit pruning: unexpected error (tried again later)")
            await asyncio.sleep(POLL.total_seconds())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
