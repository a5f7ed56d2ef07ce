"""When to try an email again, and when to stop: a pure policy (no I/O, no clock).

The sender reports each attempt's result (`Accepted`, or `Refused` with the SMTP reply code,
None when no reply came: the server down, a timeout, a dropped connection) and gets back what
to do with the email: mark it sent, try again at a time, or mark it failed. A 5xx reply is
permanent (the address does not exist, the message is refused): retrying it cannot help. A
4xx reply or no reply is temporary: tried again after `first`, then twice as long each time,
up to `cap`, until the email is `give_up_after` old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "Accepted",
    "Failed",
    "Outcome",
    "Refused",
    "Result",
    "RetryAt",
    "RetryPolicy",
    "Sent",
    "classify",
]


@dataclass(frozen=True)
class Accepted:
    """The server took the message."""


@dataclass(frozen=True)
class Refused:
    """The attempt failed: the server's reply code (None: no reply) and what it said."""

    code: int | None
    reason: str


Result = Accepted | Refused


@dataclass(frozen=True)
class Sent:
    pass


@dataclass(frozen=True)
class RetryAt:
    at: datetime
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str


Outcome = Sent | RetryAt | Failed


def classify(code: int | None) -> Literal["temporary", "permanent"]:
    """5xx is permanent; 4xx, anything else, and no reply at all are temporary."""
    return "permanent" if code is not None and 500 <= code < 600 else "temporary"


@dataclass(frozen=True)
class RetryPolicy:
    first: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(days=2)

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        # The exponent is bounded: past the cap the doubling no longer matters.
        doubled: timedelta = self.first * 2 ** min(max(attempts - 1, 0), 32)
        return min(doubled, self.cap)

    def decide(self, result: Result, attempts: int, queued_at: datetime, now: datetime) -> Outcome:
        """What to do after attempt number ``attempts`` of an email queued at ``queued_at``."""
        if isinstance(result, Accepted):
            return Sent()
        reason = f"{result.code} {result.reason}" if result.code is not None else result.reason
        if classify(result.code) == "permanent":
            return Failed(reason)
        at = now + self.delay(attempts)
        if at - queued_at > self.give_up_after:
            return Failed(f"gave up after {attempts} attempts: {reason}")
        return RetryAt(at, reason)
