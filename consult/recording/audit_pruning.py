"""Pruning the audit log: entries older than ``--audit-keep-days`` go, once an hour, by one
node at a time (the ``audit-prune`` lease: a leased job, consult/recording/leased_job.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from .audit import Audit
from .leased_job import Clock, LeasedJob
from .leases import Leases
from .store import utcnow

__all__ = ["AuditPruning"]

logger = logging.getLogger(__name__)

LEASE = "audit-prune"
EVERY = timedelta(hours=1)
LEASE_TTL = timedelta(minutes=5)
POLL = timedelta(minutes=1)


class AuditPruning:
    def __init__(
        self,
        audit: Audit,
        leases: Leases,
        keep: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self._audit = audit
        self.keep = keep
        self._job = LeasedJob(
            leases, LEASE, self._prune, every=EVERY, ttl=LEASE_TTL, poll=POLL, clock=clock
        )

    async def run_due(self) -> int | None:
        """Prune if due here and now: how many entries went, or None (not due, or another
        node is at it)."""
        return await self._job.run_due()

    async def _prune(self, now: datetime) -> int:
        removed = await self._audit.prune(now - self.keep)
        if removed:
            logger.info("audit log: %d entries older than %s removed", removed, self.keep)
        return removed

    def start(self) -> None:
        self._job.start()

    async def close(self) -> None:
        await self._job.close()
