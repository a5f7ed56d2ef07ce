"""The supervisor of ``consult serve --workers N``: the asyncio adapter of consult/workers.py.

It holds what is the service's alone: the data folder's lock (``serve.lock``), the public
port (bound with SO_REUSEPORT and never listening: consult/service.py ``reserve``), and the
start-up work that must run once (the schema's migrations, a deletion's files left by a
crash, the stills' sweep), done before any worker starts. Then it runs N workers, each
``consult serve <the same arguments> --worker I --worker-of PID`` in a process of its own:

- a worker listens on the public port with SO_REUSEPORT (the kernel spreads connections
  among the workers) and on a port of its own on loopback, and says so on its standard
  output (``READY url``), which the supervisor reads; its logs go to the same standard error
  as the supervisor's, each line naming it (``w1``);
- a worker dies with its supervisor (``PR_SET_PDEATHSIG``): a supervisor killed with SIGKILL
  leaves no worker serving a data folder whose lock it no longer holds;
- SIGTERM or SIGINT to the supervisor marks every worker draining in the store, then is
  SIGTERM to each (none moves its calls to another: they all stop); it exits when they have.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from .app import recordings_node, repair
from .config import Settings
from .errors import StorageFailed
from .media.stills import Stills
from .recording.database import Database
from .recording.files import StillFiles
from .recording.nodes import Nodes
from .recording.recordings import RecordingFiles
from .recording.store import Store
from .recording.tokens import TokenSealer, load_seal_key
from .service import SHUTDOWN_TIMEOUT
from .workers import (
    STOP_MARGIN,
    Action,
    Announce,
    Event,
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

__all__ = ["READY", "follow", "say_ready", "supervise"]

logger = logging.getLogger(__name__)

#: What a worker prints on its standard output once it accepts, with its own URL.
READY = "consult-worker-ready"
_PR_SET_PDEATHSIG = 1


def supervise(
    settings: Settings, count: int, argv: Sequence[str], serving: Callable[[], None]
) -> int:
    """Prepare the store, run ``count`` workers until SIGTERM or SIGINT; the exit code."""
    asyncio.run(prepare(settings))
    # A drain's grace, then the shutdown's wait for handlers, then a margin for a slow machine.
    stop_timeout = settings.drain_grace + SHUTDOWN_TIMEOUT + STOP_MARGIN
    workers = Workers(count, stop_timeout)
    return asyncio.run(Supervisor(workers, argv, serving, lambda: stopping(settings, count)).run())


async def prepare(settings: Settings) -> None:
    """What runs once per start, before any worker: migrations (in ``Store.open``) and the
    repairs a crash may need, with nothing else touching the store or the folders."""
    store = await Store.open(
        settings.db_url, TokenSealer(load_seal_key(settings.data_dir)), node=settings.node
    )
    try:
        files = StillFiles(settings.stills_dir, shared=settings.stills_folder is not None)
        recordings = RecordingFiles(settings.recordings_dir, recordings_node(settings))
        await repair(store, files, Stills(store, files), recordings)
    finally:
        await store.close()


async def stopping(settings: Settings, count: int) -> None:
    """The whole service stops: every worker is marked draining before any is told, so that
    none sends its calls to another of them (each moves them to another machine's node if
    there is one, or, with none, stops at once: consult/app.py ``drain``)."""
    db = Database.open(settings.db_url)
    try:
        nodes = Nodes(db)
        for index in range(count):
            await nodes.drain(dataclasses.replace(settings, worker=index).node)
    except StorageFailed:
        logger.warning("workers: could not mark them draining (database unavailable)")
    finally:
        await db.dispose()


def say_ready(url: str) -> None:
    """In a worker: tell the supervisor it accepts (at ``url``, its own port)."""
    print(READY, url, flush=True)


def follow(supervisor: int) -> None:
    """In a worker, first thing: die with the supervisor ``supervisor`` (or now, if it has
    gone already)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != supervisor:
        os._exit(1)


class Supervisor:
    def __init__(
        self,
        workers: Workers,
        argv: Sequence[str],
        serving: Callable[[], None],
        stopping: Callable[[], Awaitable[None]],
    ) -> None:
        self._workers = workers
        self._stopping = stopping
        self._argv = list(argv)
        self._serving = serving
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: self._events.put_nowait(StopAsked(loop.time())))
        actions = self._workers.start()
        try:
            while True:
                for action in actions:
                    code = await self._apply(action)
                    if code is not None:
                        return code
                event = await self._next_event()
                if isinstance(event, StopAsked) and self._workers.state == "serving":
                    await self._stopping()
                actions = self._workers.handle(event)
        finally:
            for process in self._processes.values():
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            for watcher in self._watchers:
                watcher.cancel()
            await asyncio.gather(*self._watchers, return_exceptions=True)

    async def _next_event(self) -> Event:
        loop = asyncio.get_running_loop()
        due = self._workers.next_tick()
        if due is None:
            return await self._events.get()
        try:
            return await asyncio.wait_for(self._events.get(), max(0.0, due - loop.time()))
        except TimeoutError:
            return Tick(loop.time())

    async def _apply(self, action: Action) -> int | None:
        if isinstance(action, Spawn):
            await self._spawn(action.index)
        elif isinstance(action, Announce):
            logger.info("workers: every worker accepts")
            self._serving()
        elif isinstance(action, Terminate | Kill):
            process = self._processes.get(action.index)
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    if isinstance(action, Kill):
                        logger.warning("worker w%d (pid %d) killed: it did not stop in time",
                                       action.index, process.pid)  # fmt: skip
                        process.kill()
                    else:
                        process.terminate()
        elif isinstance(action, Exit):
            return action.code
        return None

    async def _spawn(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        command = [sys.executable, "-m", "consult", *self._argv,
                   "--worker", str(index), "--worker-of", str(os.getpid())]  # fmt: skip
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            logger.error("worker w%d could not start: %s", index, exc)
            self._events.put_nowait(Spawned(index, loop.time()))
            self._events.put_nowait(Exited(index, 1, loop.time()))
            return
        self._processes[index] = process
        logger.info("worker w%d started (pid %d)", index, process.pid)
        self._events.put_nowait(Spawned(index, loop.time()))
        watcher = asyncio.create_task(self._watch(index, process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, index: int, process: asyncio.subprocess.Process) -> None:
        """The worker's standard output until it ends: its ``READY`` line, and anything else
        passed on; then its exit."""
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode(errors="replace").rstrip("\n")
            if text.startswith(READY):
                logger.info("worker w%d (pid %d) accepts; its own URL %s",
                            index, process.pid, text.removeprefix(READY).strip())  # fmt: skip
                self._events.put_nowait(Ready(index))
            else:
                print(text, flush=True)
        code = await process.wait()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        log = logger.info if code == 0 else logger.warning
        log("worker w%d (pid %d) ended: %s", index, process.pid, how)
        self._events.put_nowait(Exited(index, code, asyncio.get_running_loop().time()))
