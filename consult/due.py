"""The due-work runner: runs what the store says is due (consult/recording/due.py), on any node.

Every node runs one. It looks for items due and unclaimed, claims each (a conditional UPDATE:
one node wins it), and runs its kind's handler inside a transaction that also marks it done,
so what the handler writes through that connection (an outbox row, a message) and "done"
commit together or not at all: a node killed mid-run leaves the item to be claimed again when
its claim lapses, with nothing of the first run kept. On SQLite a process has one writer at
a time, so a handler writes through ``conn`` only (``Outbox.queue(..., conn)``,
``Conversations.post(..., conn=conn)``, ``DueWork.put(..., conn=conn)``), never through a
transaction of its own. Handlers are idempotent by ``item.key`` all the same (an outbox row
deduplicated by key, a conversation message whose ``client_id`` is the key): whatever
reaches outside the database (a message delivered to open pages) may be repeated, never
stored twice.

A node (named by ``--node-id``, or its machine and port: the same across restarts) lets go of
its earlier claims when its runner starts: killed mid-run, its work is due again at once.

A run that raises is tried again later (``RetryPolicy``'s doubling delays), its error kept on
the item and counted in the metrics. An item of a kind no handler is registered for waits
(another node, or a later version, may know it) rather than failing.

It looks again when something is put (``DueWork.changed``), when the next item is due, or
every ``poll``. ``clock`` is injectable: the tests move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from .mail.policy import RetryPolicy
from .metrics import Metrics
from .recording.database import Database
from .recording.due import DueItem, DueWork, LostClaim

__all__ = ["Clock", "DueRunner", "Handler"]

logger = logging.getLogger(__name__)

Handler = Callable[[DueItem, AsyncConnection], Awaitable[None]]
Clock = Callable[[], datetime]

#: A claim outlives a node that died by this much; a run must end within it.
LEASE = timedelta(minutes=2)
POLL = timedelta(seconds=15)
#: Items claimed per look; the rest wait for the next.
BATCH = 50


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DueRunner:
    def __init__(
        self,
        database: Database,
        handlers: Mapping[str, Handler],
        *,
        node: str,
        clock: Clock = _utcnow,
        lease: timedelta = LEASE,
        poll: timedelta = POLL,
        retry: RetryPolicy = RetryPolicy(first=timedelta(seconds=30)),  # noqa: B008
        metrics: Metrics | None = None,
        work: DueWork | None = None,
    ) -> None:
        self._db = database
        #: The store's due work (shared with those who put it, so a put wakes the runner).
        self.work = work or DueWork(database)
        self._handlers = dict(handlers)
        self._node = node
        self._clock = clock
        self._lease = lease
        self._poll = poll
        self._retry = retry
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="due work")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            if released := await self.work.release(self._node):
                logger.info("due work: %d items this node had claimed before it started", released)
        except Exception:
            logger.exception("due work: this node's earlier claims not released")
        while True:
            self.work.changed.clear()
            wait = self._poll.total_seconds()
            try:
                await self.run_once()
                wait = await self._until_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("due work: unexpected error")
            # In this task: no task of its own per wait (wait_for would make one).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.work.changed.wait()

    async def _until_due(self) -> float:
        poll = self._poll.total_seconds()
        due = await self.work.next_due()
        if due is None:
            return poll
        return min(poll, max(0.0, (due - self._clock()).total_seconds()))

    async def run_once(self) -> int:
        """Claim and run what is due now; how many ran to the end."""
        done = 0
        while batch := await self.work.due(self._clock(), BATCH):
            ran = 0
            for item in batch:
                if item.kind not in self._handlers:
                    continue
                ran += 1
                done += await self._run_item(item)
            if ran == 0 or len(batch) < BATCH:
                break
        return done

    async def _run_item(self, item: DueItem) -> int:
        now = self._clock()
        claimed = await self.work.claim(item.id, self._node, now, now + self._lease)
        if claimed is None:
            return 0  # another node has it
        handler = self._handlers[claimed.kind]
        try:
            async with self._db.begin() as conn:
                await handler(claimed, conn)
                await self.work.finish(claimed, self._node, self._clock(), conn)
        except LostClaim:
            logger.warning("due work %s: claimed by another node while it ran", claimed.key)
            return 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = self._retry.delay(claimed.attempts)
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "due work %s failed (attempt %d, again in %s): %s",
                claimed.key, claimed.attempts, delay, reason,
            )  # fmt: skip
            if self._metrics is not None:
                self._metrics.due_run(claimed.kind, "failed")
            with contextlib.suppress(Exception):
                await self.work.failed(claimed, self._node, reason, self._clock() + delay)
            return 0
        if self._metrics is not None:
            self._metrics.due_run(claimed.kind, "done")
        return 1
