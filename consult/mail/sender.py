"""The outbox's sender: one node at a time hands queued email to the salon's SMTP server.

The node holding the ``mail`` lease (consult/recording/leases.py) sends what is due (the
reminders are queued by due work: consult/reminders.py), oldest first, one at a time; each
attempt's result goes through the retry policy (consult/mail/policy.py): sent, tried again
later, or failed for good and shown on the conversation. It looks again when an email is
queued, when the next retry is due, or every ``POLL``. Queued mail waits in the store across
restarts: a server that accepted a message is never given it again, short of a crash in the
moment between its "250 OK" and the store recording it (then the copy has the same
Message-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from ..recording.leases import holder_name
from ..recording.outbox import Queued
from ..recording.store import Store, utcnow
from .notices import Clock, Notices
from .policy import Failed, RetryAt, RetryPolicy, Sent
from .smtp import SmtpServer, deliver

__all__ = ["MailSender"]

logger = logging.getLogger(__name__)

LEASE = "mail"
#: A holder that died loses the lease this long after its last renewal; a live one renews it
#: at every round and before every message.
LEASE_TTL = timedelta(seconds=90)
POLL = timedelta(seconds=15)


class MailSender:
    def __init__(
        self,
        store: Store,
        notices: Notices,
        server: SmtpServer,
        sender: str,
        policy: RetryPolicy,
        clock: Clock = utcnow,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._notices = notices
        self._server = server
        self._sender = sender
        self._policy = policy
        self._clock = clock
        self._node = node
        self._holder = holder_name(node)
        self._holding = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        logger.info("email: sending through %s as %s", self._server, self._sender)
        self._task = asyncio.create_task(self._run(), name="mail sender")

    async def close(self) -> None:
        """Stop after the message being handed over, if any (cut off, a message the server
        took might not be recorded as sent, and go again after the restart)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._notices.queued.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), self._server.timeout * 2)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._holding:
            self._holding = False
            # Let go at once: a node started after this one sends without waiting for expiry.
            await self._store.leases.release(LEASE, self._holder, None)

    async def _run(self) -> None:
        if self._node is not None:
            try:
                # Killed and started again: this node's earlier process held it.
                await self._store.leases.release_earlier(LEASE, self._node)
            except Exception:
                logger.exception("email: the lease of this node's earlier process not freed")
        while not self._stopping:
            self._notices.queued.clear()
            try:
                await self.run_once()
                wait = await self._until_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("email: unexpected error")
                wait = POLL.total_seconds()
            # asyncio.timeout, not wait_for: no task of its own waiting on the event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._notices.queued.wait()

    async def _until_due(self) -> float:
        poll = POLL.total_seconds()
        if not self._holding:
            return poll
        due = await self._store.outbox.next_due()
        if due is None:
            return poll
        return min(poll, max(0.0, (due - self._clock()).total_seconds()))

    async def _hold(self) -> bool:
        leases, now = self._store.leases, self._clock()
        if self._holding and await leases.renew(LEASE, self._holder, now, LEASE_TTL):
            return True
        self._holding = await leases.take(LEASE, self._holder, now, LEASE_TTL, timedelta(0))
        return self._holding

    async def run_once(self) -> int:
        """If this node holds the lease: send the email due; how many emails the server
        accepted."""
        if not await self._hold():
            return 0
        accepted = 0
        while batch := await self._store.outbox.due(self._clock()):
            for queued in batch:
                if self._stopping or not await self._hold():
                    return accepted
                accepted += await self._send(queued)
        return accepted

    async def _send(self, queued: Queued) -> int:
        mail, outbox = queued.mail, self._store.outbox
        mail_id = mail.id
        if await outbox.unsubscribed(mail.recipient):
            await outbox.cancel(mail_id, "unsubscribed")
            return 0
        result = await deliver(self._server, self._sender, mail.recipient, queued.message)
        now = self._clock()
        outcome = self._policy.decide(result, mail.attempts + 1, mail.created_at, now)
        await outbox.record(mail_id, mail.attempts + 1, outcome, now)
        where = f"{mail.consultation_id or '-'}: {mail.kind} email #{mail_id} to {mail.recipient}"
        match outcome:
            case Sent():
                logger.info("%s sent", where)
                return 1
            case RetryAt(at=at, reason=reason):
                logger.warning("%s not sent (%s); trying again at %s", where, reason, at)
            case Failed(reason=reason):
                logger.error("%s could not be delivered: %s", where, reason)
        return 0
