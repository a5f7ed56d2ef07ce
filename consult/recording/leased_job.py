"""A leased job: periodic work that one node at a time does for every node sharing the database.

Every node polls; the one that takes the job's lease (consult/recording/leases.py) when the
work is due does it, renewing the lease every third of its time-to-live while the work runs
(a long run is never taken over by another node), then gives the lease up: with ``done_at``
when the work was done (not due again on any node until ``every`` has passed), without it
when the work failed (due again at once). Audit pruning, retention and scheduled backups are
leased jobs; each says only what its work is.

The work returns its result, or None when it failed and has said why itself (a backup that
could not be written); an exception is a failure too, logged by the loop and tried again at
the next poll. ``clock`` is injectable: the tests move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from .leases import Leases, holder_name
from .store import utcnow

__all__ = ["Clock", "LeasedJob"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]


class LeasedJob(Generic[T]):
    def __init__(
        self,
        leases: Leases,
        lease: str,
        work: Callable[[datetime], Awaitable[T | None]],
        *,
        every: timedelta,
        ttl: timedelta,
        poll: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self._leases = leases
        #: The lease's name (its row is made by the migration that introduces the work).
        self.lease = lease
        self._work = work
        self.every = every
        self._ttl = ttl
        self._poll = poll
        self._clock = clock
        self._holder = holder_name()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leased job {self.lease}")

    async def close(self) -> None:
        """Stop polling; work under way is cancelled and the lease given up."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: unexpected error (tried again later)", self.lease)
            await asyncio.sleep(self._poll.total_seconds())

    async def run_due(self) -> T | None:
        """Do the work if it is due and no other node is doing it: its result, or None (not
        this node's turn, or the work failed)."""
        now = self._clock()
        if not await self._leases.take(self.lease, self._holder, now, self._ttl, self.every):
            return None
        done_at: datetime | None = None
        try:
            result = await self._renewing(self._work(now))
            if result is not None:
                done_at = self._clock()
            return result
        finally:
            try:
                await asyncio.shield(self._leases.release(self.lease, self._holder, done_at))
            except Exception:
                # It expires by itself; the work is then due again (done_at was not kept).
                logger.exception("%s: the lease not given up", self.lease)

    async def _renewing(self, work: Awaitable[T | None]) -> T | None:
        """Await the work, renewing the lease meanwhile; cancelled (or failing to renew), the
        work is cancelled too."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _pending = await asyncio.wait({task}, timeout=(self._ttl / 3).total_seconds())
                if done:
                    return task.result()
                if not await self._leases.renew(self.lease, self._holder, self._clock(), self._ttl):
                    logger.warning("%s: the lease was lost while the work ran", self.lease)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
