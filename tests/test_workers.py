"""The workers' pure core: start, announce, restart with backoff, stop (no processes)."""

from __future__ import annotations

import pytest

from consult.workers import (
    FIRST_BACKOFF,
    MAX_BACKOFF,
    STEADY,
    Announce,
    Exit,
    Exited,
    Kill,
    Ready,
    Spawn,
    Spawned,
    StopAsked,
    Terminate,
    Tick,
    Workers,
)


def serving(count: int = 2, at: float = 0.0) -> Workers:
    workers = Workers(count)
    assert workers.start() == [Spawn(i) for i in range(count)]
    for i in range(count):
        assert workers.handle(Spawned(i, at)) == []
    return workers


def test_announced_once_every_worker_accepts() -> None:
    workers = serving(3)
    assert workers.handle(Ready(0)) == []
    assert workers.handle(Ready(2)) == []
    assert workers.handle(Ready(1)) == [Announce()]
    assert workers.state == "serving"
    # A worker started again later accepting announces nothing more.
    workers.handle(Exited(1, -9, 100.0))
    workers.handle(Tick(100.0 + FIRST_BACKOFF))
    workers.handle(Spawned(1, 101.0))
    assert workers.handle(Ready(1)) == []


def test_a_worker_that_dies_is_started_again_after_a_backoff_that_grows_while_it_keeps_dying() -> (
    None
):
    workers = serving()
    workers.handle(Ready(0))
    workers.handle(Ready(1))
    at = 100.0
    waits = []
    for _ in range(8):
        assert workers.handle(Exited(0, -9, at)) == []
        due = workers.next_tick()
        assert due is not None
        assert workers.handle(Tick(due - 0.01)) == []  # not before its time
        assert workers.handle(Tick(due)) == [Spawn(0)]
        waits.append(due - at)
        at = due + 1.0  # dies again a second after it started
        workers.handle(Spawned(0, due))
    assert waits[:3] == [FIRST_BACKOFF, 2 * FIRST_BACKOFF, 4 * FIRST_BACKOFF]
    assert max(waits) == MAX_BACKOFF
    # One that ran steadily before dying comes back after the first backoff again.
    workers.handle(Exited(0, -9, at + STEADY))
    assert workers.next_tick() == at + STEADY + FIRST_BACKOFF
    # The other worker was never touched.
    assert workers.state == "serving"


def test_a_worker_that_fails_before_the_service_is_announced_ends_the_start() -> None:
    workers = serving()
    workers.handle(Ready(0))
    assert workers.handle(Exited(1, 1, 5.0)) == [Terminate(0)]
    assert workers.state == "stopping"
    assert workers.handle(Exited(0, 0, 6.0)) == [Exit(1)]


def test_a_stop_terminates_every_worker_and_exits_0_once_all_ended_cleanly() -> None:
    workers = serving()
    workers.handle(Ready(0))
    workers.handle(Ready(1))
    assert workers.handle(StopAsked(10.0)) == [Terminate(0), Terminate(1)]
    assert workers.handle(StopAsked(11.0)) == []  # a second signal changes nothing
    assert workers.handle(Exited(1, 0, 12.0)) == []
    assert workers.handle(Exited(0, 0, 13.0)) == [Exit(0)]
    assert workers.state == "stopped"


def test_a_stop_while_a_worker_waits_to_be_started_again_does_not_start_it() -> None:
    workers = serving()
    workers.handle(Ready(0))
    workers.handle(Ready(1))
    workers.handle(Exited(0, -9, 10.0))
    assert workers.handle(StopAsked(10.5)) == [Terminate(1)]
    assert workers.handle(Tick(10.0 + FIRST_BACKOFF)) == []
    assert workers.handle(Exited(1, 0, 12.0)) == [Exit(0)]


def test_workers_that_do_not_stop_in_time_are_killed_and_the_exit_says_so() -> None:
    workers = Workers(2, stop_timeout=45.0)
    workers.start()
    workers.handle(Spawned(0, 0.0))
    workers.handle(Spawned(1, 0.0))
    workers.handle(Ready(0))
    workers.handle(Ready(1))
    workers.handle(StopAsked(10.0))
    workers.handle(Exited(0, 0, 11.0))
    assert workers.next_tick() == 10.0 + 45.0
    assert workers.handle(Tick(10.0 + 45.0)) == [Kill(1)]
    assert workers.handle(Exited(1, -9, 10.0 + 45.0)) == [Exit(1)]


def test_a_stop_before_any_worker_accepts() -> None:
    workers = serving()
    assert workers.handle(StopAsked(1.0)) == [Terminate(0), Terminate(1)]
    workers.handle(Exited(0, 0, 2.0))
    assert workers.handle(Exited(1, 0, 2.0)) == [Exit(0)]


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Workers(0)
