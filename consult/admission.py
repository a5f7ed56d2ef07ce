"""Whether this worker takes one more call: admission by headroom (pure, no I/O).

A full core does not slow one call down: it freezes every call on it at once (docs/media.md,
"Where the limit is"). So a new call is admitted only while the worker has room for it; the
call that would not fit is refused with ``server-busy`` (both pages say so and try again by
themselves) and the calls in progress keep their frame rate.

The adapter (``Hub.watch_load``) feeds a ``Sample`` once a second: the CPU time of the thread
that runs the event loop (every packet of every call goes through it; recording's writer and
the encoders of the frame path run on other threads) and how late the loop woke up. A call is
admitted when

- fewer than ``max_calls`` are live (where a cap is set), and
- the loop's CPU over the last ``window`` seconds, plus the cost of the calls admitted in the
  last ``settle`` seconds (their media takes that long to connect, ramp up and show in the
  window), plus one more call, stays under ``cpu_limit`` of a core; a call's cost is what the
  live calls cost on average, never less than ``min_call_cost`` (what a 720p consultation at
  2.5 Mbps costs on a 2020s server core, docs/media.md): after a restart every page comes
  back within seconds, and the first calls of a quiet worker are judged on that, and
- the loop is not running late: each of the last ``LATE_SAMPLES`` samples woke more than
  ``max_lag`` late (one late wake-up is a pause, not a full core).

With ``cpu_limit`` None the headroom is not judged at all (neither CPU nor lateness): only the
cap counts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["Admission", "Admit", "Busy", "Decision", "Sample", "admit_limit"]

#: How many consecutive late wake-ups mean the loop is behind.
LATE_SAMPLES = 3


def admit_limit(fraction: float | None, cores: float | None, workers: int = 1) -> float | None:
    """The loop's CPU limit: ``fraction`` of the core it runs on, or of the share of a core a
    CPU quota leaves it (a container limited to half a core: half of that; ``workers``
    sharing the quota: each its part of it)."""
    if fraction is None:
        return None
    return fraction * min(1.0, cores / workers) if cores is not None else fraction


@dataclass(frozen=True)
class Sample:
    #: Monotonic seconds.
    at: float
    #: The event loop thread's CPU time, seconds.
    cpu: float
    #: Seconds the loop woke up later than asked.
    lag: float
    #: Calls live at the time.
    calls: int


@dataclass(frozen=True)
class Admit:
    pass


@dataclass(frozen=True)
class Busy:
    reason: Literal["calls", "cpu", "lag"]
    #: The fraction of a core the loop used over the window (None: not measured yet).
    usage: float | None


Decision = Admit | Busy


class Admission:
    def __init__(
        self,
        *,
        cpu_limit: float | None = 0.85,
        max_calls: int | None = None,
        window: float = 5.0,
        settle: float = 10.0,
        max_lag: float = 0.1,
        min_call_cost: float = 0.04,
    ) -> None:
        self.cpu_limit = cpu_limit
        self.max_calls = max_calls
        self.window = window
        self.settle = settle
        self.max_lag = max_lag
        self.min_call_cost = min_call_cost
        self._samples: deque[Sample] = deque()
        self._admitted: deque[float] = deque()

    def observe(self, sample: Sample) -> None:
        self._samples.append(sample)
        # One sample older than the window is kept: it is where the window's CPU starts.
        while len(self._samples) > 2 and self._samples[1].at <= sample.at - self.window:
            self._samples.popleft()

    def usage(self) -> float | None:
        """The fraction of a core the loop used over the window."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        if last.at <= first.at:
            return None
        return max(0.0, (last.cpu - first.cpu) / (last.at - first.at))

    def call_cost(self) -> float:
        """What one call costs the loop, in a fraction of a core: the live calls' average."""
        usage = self.usage()
        calls = [s.calls for s in list(self._samples)[1:]]
        mean_calls = sum(calls) / len(calls) if calls else 0.0
        if usage is None or mean_calls < 1:
            return self.min_call_cost
        return max(self.min_call_cost, usage / mean_calls)

    def decide(self, at: float, calls: int) -> Decision:
        """Whether a new call is taken now, with ``calls`` live; an admitted one is counted
        against the headroom until the window has seen its cost."""
        while self._admitted and self._admitted[0] <= at - self.settle:
            self._admitted.popleft()
        usage = self.usage()
        if self.max_calls is not None and calls >= self.max_calls:
            return Busy("calls", usage)
        if self.cpu_limit is None:  # headroom not judged
            self._admitted.append(at)
            return Admit()
        recent = list(self._samples)[-LATE_SAMPLES:]
        if len(recent) == LATE_SAMPLES and all(s.lag > self.max_lag for s in recent):
            return Busy("lag", usage)
        if usage is not None:
            projected = usage + self.call_cost() * (len(self._admitted) + 1)
            if projected > self.cpu_limit:
                return Busy("cpu", usage)
        self._admitted.append(at)
        return Admit()
