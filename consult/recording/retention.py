"""Retention: consultations with no activity for ``CONSULT_RETENTION_MONTHS`` months are removed
by the service itself (off by default), each removal written to the audit log as
``system:retention``.

Every node polls; the one holding the ``retention`` lease (a leased job:
consult/recording/leased_job.py) removes what is due, through the same deletion as the owner's
(consult/recording/deletion.py: rows and a journal of files in one transaction, then the
files). A live call is never removed.
``now`` comes from a clock the job is given, so the policy is tested at any date.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from .deletion import Folder, remove_files
from .leased_job import Clock, LeasedJob
from .store import Store, utcnow

__all__ = ["ACTOR", "Retention", "cutoff"]

logger = logging.getLogger(__name__)

LEASE = "retention"
LEASE_TTL = timedelta(minutes=10)
#: How often the policy is applied (by one node).
EVERY = timedelta(hours=1)
POLL = timedelta(minutes=5)
#: Consultations removed per transaction: a long backlog does not hold the database.
BATCH = 50
ACTOR = "system:retention"


def cutoff(now: datetime, months: int) -> datetime:
    """``months`` calendar months before ``now`` (the 31st falls back to the month's last day)."""
    total = now.year * 12 + (now.month - 1) - months
    year, month = divmod(total, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


class Retention:
    def __init__(
        self,
        store: Store,
        months: int,
        folders: Mapping[Folder, Callable[[str], Path]],
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self.months = months
        self._folders = folders
        self._job = LeasedJob(
            store.leases, LEASE, self.apply, every=EVERY, ttl=LEASE_TTL, poll=POLL, clock=clock
        )

    def start(self) -> None:
        self._job.start()

    async def close(self) -> None:
        await self._job.close()

    async def run_due(self) -> list[str] | None:
        """Apply the policy if it is due and no other node is applying it: the consultations
        removed, or None when it was not this node's turn."""
        return await self._job.run_due()

    async def apply(self, now: datetime) -> list[str]:
        """Remove every consultation whose last activity is more than ``months`` before
        ``now`` (live calls excepted); their ids."""
        limit = cutoff(now, self.months)
        removed: list[str] = []
        while True:
            due = await self._store.stale_consultations(limit, BATCH)
            if not due:
                break
            done = await self._store.deletion.consultations(
                due, actor=ACTOR, action="retention-removed"
            )
            removed.extend(done.consultations)
            await remove_files(self._store.deletion, self._folders)
        if removed:
            await self._store.deletion.scrub()
            logger.info("retention: removed %d consultations idle since %s", len(removed), limit)
        return removed
