"""Failed authentication, limited per client address: guessing keys and links does not scale;
messages, limited per connection (``TokenBucket``) or, over HTTP, per sender (``SenderBuckets``).

A client that presents a wrong staff key or an unknown, expired or revoked link too often
within the window is refused (429 ``too-many-attempts``) until the window has passed, even with
a right credential. Requests without any credential do not count.

Several nodes on one database share the count (``shared``, the store's FailureLog): a node
that has seen an address fail also asks the database how often it failed on every node, so a
client cannot try the limit on each node in turn. Addresses that never failed here cost no
query. The message rate (``TokenBucket``) is per websocket connection, and a connection lives
on one node: it needs no sharing. ``SenderBuckets`` stay per node on purpose: they bound the
work one node does for one sender (bodies read, files probed and written), as the websocket's
rate does per connection; the bound grows with the nodes, which guessing's must not
(docs/operations.md, Why the HTTP rates stay per node).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .errors import StorageFailed
from .recording.failures import FailureLog

__all__ = ["FailureLimiter", "SenderBuckets", "TokenBucket"]

logger = logging.getLogger(__name__)


class FailureLimiter:
    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        max_clients: int = 10_000,
        shared: Callable[[], FailureLog | None] = lambda: None,
    ) -> None:
        self.limit = limit
        self.window = window
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._shared = shared

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    async def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 if it may now."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) >= self.limit:
            return max(0.0, failures[0] + self.window - now)
        log = self._shared()
        if log is None or not failures:
            return 0.0
        wall = datetime.now(UTC)
        try:
            count, oldest = await log.recent(client, wall - timedelta(seconds=self.window))
        except StorageFailed:
            return 0.0  # this node's own count still holds
        if count < self.limit or oldest is None:
            return 0.0
        return max(0.0, (oldest - wall).total_seconds() + self.window)

    async def failed(self, client: str) -> None:
        now = time.monotonic()
        if client not in self._failures and len(self._failures) >= self._max_clients:
            # Bounded memory under a flood of addresses: forget the oldest client.
            self._failures.pop(next(iter(self._failures)))
        failures = self._failures.setdefault(client, deque(maxlen=self.limit))
        failures.append(now)
        log = self._shared()
        if log is not None:
            try:
                await log.add(client, datetime.now(UTC), timedelta(seconds=self.window))
            except StorageFailed:
                logger.warning("a failed authentication not shared (database unavailable)")


class TokenBucket:
    """``rate`` events a second on average, bursts up to ``burst``: one per connection."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class SenderBuckets:
    """A ``TokenBucket`` per sender (a consultation's side), for messages sent over HTTP where
    there is no connection to hold one: the same rate as a websocket's messages."""

    def __init__(self, rate: float, burst: int, max_senders: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self._max_senders = max_senders
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def take(self, consultation_id: str, sender: str) -> bool:
        key = (consultation_id, sender)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_senders:
                # Bounded memory: forget the oldest sender (its bucket was full again by now,
                # or nearly: ten thousand senders came since).
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take()
