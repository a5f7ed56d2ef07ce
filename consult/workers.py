"""The workers of one machine's service, a pure core (no I/O): which worker to start, when to
start one again, when the service is ready, how it stops.

``consult serve --workers N`` runs N worker processes under a supervisor
(consult/supervisor.py), which feeds this core what happens (``Spawned``, ``Ready``,
``Exited``, ``StopAsked``, ``Tick``) and carries out what it returns (``Spawn``,
``Announce``, ``Terminate``, ``Kill``, ``Exit``).

- The service is announced once every worker accepts (each said ``Ready`` once).
- A worker that ends on its own while the service serves is started again after a backoff:
  ``FIRST_BACKOFF``, doubled each time it ends again within ``STEADY`` of its start, up to
  ``MAX_BACKOFF``. One that ends before the service was ever announced ends the start (a bad
  setting would otherwise start again for ever): the others are stopped and the exit is 1.
- A stop (SIGTERM, SIGINT) terminates every worker (each drains its calls) and waits;
  workers still there ``stop_timeout`` later are killed. The exit is 0 when every worker
  ended cleanly, else 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Action",
    "Announce",
    "Event",
    "Exit",
    "Exited",
    "Kill",
    "Ready",
    "Spawn",
    "Spawned",
    "StopAsked",
    "Terminate",
    "Tick",
    "Workers",
]

logger = logging.getLogger(__name__)

#: Seconds before a worker that ended is started again, the first time.
FIRST_BACKOFF = 1.0
#: The longest wait before a worker that keeps ending is started again.
MAX_BACKOFF = 30.0
#: A worker that ran this long before ending is started again after FIRST_BACKOFF.
STEADY = 30.0
#: Seconds the workers get to stop after their drain's grace period and their shutdown's
#: wait for handlers (``Workers.stop_timeout`` is all three), before they are killed.
STOP_MARGIN = 30.0

State = Literal["starting", "serving", "stopping", "stopped"]


# Events in


@dataclass(frozen=True)
class Spawned:
    index: int
    at: float


@dataclass(frozen=True)
class Ready:
    """Worker ``index`` accepts connections."""

    index: int


@dataclass(frozen=True)
class Exited:
    index: int
    #: The process's exit status: a code, or minus the signal that ended it.
    code: int
    at: float


@dataclass(frozen=True)
class StopAsked:
    at: float


@dataclass(frozen=True)
class Tick:
    at: float


Event = Spawned | Ready | Exited | StopAsked | Tick


# Actions out


@dataclass(frozen=True)
class Spawn:
    index: int


@dataclass(frozen=True)
class Announce:
    """Every worker accepts: say the service serves."""


@dataclass(frozen=True)
class Terminate:
    index: int


@dataclass(frozen=True)
class Kill:
    index: int


@dataclass(frozen=True)
class Exit:
    code: int


Action = Spawn | Announce | Terminate | Kill | Exit


@dataclass
class _Worker:
    running: bool = False
    ready: bool = False
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    #: When it is to be started again (None: it is not waiting for that).
    restart_at: float | None = None
    clean: bool = True


@dataclass
class Workers:
    count: int
    #: Seconds from a stop until the workers still there are killed.
    stop_timeout: float = 60.0
    state: State = "starting"
    _workers: list[_Worker] = field(default_factory=list)
    _stop_deadline: float | None = None
    _failed: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("--workers must be at least 1")
        self._workers = [_Worker() for _ in range(self.count)]

    def start(self) -> list[Action]:
        return [Spawn(i) for i in range(self.count)]

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, Spawned):
            worker = self._workers[event.index]
            worker.running, worker.ready, worker.started_at = True, False, event.at
            worker.restart_at = None
            return [Terminate(event.index)] if self.state == "stopping" else []
        if isinstance(event, Ready):
            return self._ready(event.index)
        if isinstance(event, Exited):
            return self._exited(event)
        if isinstance(event, StopAsked):
            return self._stop(event.at)
        return self._tick(event.at)

    def next_tick(self) -> float | None:
        """When a ``Tick`` next matters (a restart, the stop's deadline); None: never."""
        times = [w.restart_at for w in self._workers if w.restart_at is not None]
        if self._stop_deadline is not None:
            times.append(self._stop_deadline)
        return min(times) if times else None

    def _set_state(self, state: State) -> None:
        if state == self.state:
            return
        logger.info("workers: %s -> %s", self.state, state)
        self.state = state

    def _ready(self, index: int) -> list[Action]:
        worker = self._workers[index]
        if not worker.running:
            return []
        worker.ready = True
        if self.state == "starting" and all(w.ready for w in self._workers):
            self._set_state("serving")
            return [Announce()]
        return []

    def _exited(self, event: Exited) -> list[Action]:
        worker = self._workers[event.index]
        worker.running = worker.ready = False
        if self.state == "stopping":
            worker.clean = worker.clean and event.code == 0
            return self._maybe_done()
        if self.state == "starting":
            # Before the service was ever announced: a setting every worker shares is wrong.
            self._failed = True
            return self._stop(event.at)
        if self.state != "serving":
            return []
        ran = event.at - worker.started_at
        worker.backoff = FIRST_BACKOFF if ran >= STEADY else worker.backoff
        worker.restart_at = event.at + worker.backoff
        worker.backoff = min(MAX_BACKOFF, worker.backoff * 2)
        return []

    def _stop(self, at: float) -> list[Action]:
        if self.state in ("stopping", "stopped"):
            return []
        self._set_state("stopping")
        self._stop_deadline = at + self.stop_timeout
        for worker in self._workers:
            worker.restart_at = None
        return [Terminate(i) for i, w in enumerate(self._workers) if w.running] + (
            self._maybe_done()
        )

    def _maybe_done(self) -> list[Action]:
        if any(w.running for w in self._workers):
            return []
        self._set_state("stopped")
        self._stop_deadline = None
        clean = not self._failed and all(w.clean for w in self._workers)
        return [Exit(0 if clean else 1)]

    def _tick(self, at: float) -> list[Action]:
        actions: list[Action] = []
        if self._stop_deadline is not None and at >= self._stop_deadline:
            self._stop_deadline = None
            for i, worker in enumerate(self._workers):
                if worker.running:
                    worker.clean = False
                    actions.append(Kill(i))
        for i, worker in enumerate(self._workers):
            if worker.restart_at is not None and at >= worker.restart_at:
                worker.restart_at = None
                actions.append(Spawn(i))
        return actions
