"""The service of a data folder: one at a time, announced only once it listens.

``consult serve`` holds ``DATA/serve.lock`` for as long as it runs (the system lets go of it
when the process ends, however it ends), so a second service on the same folder, whose calls
would never meet the first one's, is refused. It binds its port before it says anything: a
port in use is one line, with no banner. ``run`` serves the app on that socket until SIGINT or
SIGTERM, and says it serves (the banner, and ``DATA/server.json``, where ``consult create``
and ``consult list`` point their links) only once the app has started and the site accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from .config import Settings
from .http import RedactingAccessLogger
from .tls_site import TlsSite

__all__ = [
    "CannotListen",
    "ServiceLock",
    "StartRefused",
    "listen",
    "listen_internal",
    "record_served_url",
    "reserve",
    "run",
    "running",
    "served_url",
]

LOCK_FILE = "serve.lock"
SERVED_FILE = "server.json"


class StartRefused(Exception):
    """The service cannot start; the message says why and what to do, in one line."""


class CannotListen(StartRefused):
    pass


class ServiceLock:
    """The data folder's lock, held by the running service."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StartRefused(
                f"another consult serve (pid {pid}) is already running on the data folder"
                f" {self.path.parent}; stop it first, or give this one another --data"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def running(data_dir: Path) -> bool:
    """Whether a service holds ``data_dir``'s lock now."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also lets go of the shared lock, if taken
    return False


def listen(settings: Settings, *, shared: bool = False) -> socket.socket:
    """The listening socket on ``settings.host``/``settings.port``; ``shared``: with
    SO_REUSEPORT, beside the other workers' (the kernel spreads connections among them)."""
    return _bind(settings, listening=True, shared=shared)


def reserve(settings: Settings) -> socket.socket:
    """The workers' port, held by their supervisor: a port another program uses is refused
    in one line before any worker starts, and none can take it while a worker restarts. Bound
    with SO_REUSEPORT but never listening, it gets no connection itself (the kernel gives
    them to listening sockets only)."""
    # A program listening there already (another service's workers, with SO_REUSEPORT too)
    # would share the port silently: a socket without the option is refused by any of them.
    _bind(settings, listening=False, shared=False).close()
    return _bind(settings, listening=False, shared=True)


def _bind(settings: Settings, *, listening: bool, shared: bool) -> socket.socket:
    host = settings.host or None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {settings.host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "::" serves IPv4 too: the addresses printed for it include IPv4 ones.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        if listening:
            sock.listen(128)
    except OSError as exc:
        sock.close()
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(
                f"port {settings.port} is already in use on {settings.host} (another program"
                f" listens there); choose another with --port, e.g. --port {settings.port + 1}"
            ) from None
        raise CannotListen(f"cannot listen on {where}: {exc.strerror}") from None
    return sock


def listen_internal(host: str) -> socket.socket:
    """A worker's own port on ``host`` (chosen by the system): where the other workers and
    nodes reach this one worker, whatever the kernel does with the shared port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}: {exc.strerror}") from None
    return sock


def served_url(data_dir: Path) -> str | None:
    """The base URL the service of ``data_dir`` last served on."""
    try:
        return str(json.loads((data_dir / SERVED_FILE).read_text())["base_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_served_url(data_dir: Path, base_url: str) -> None:
    path = data_dir / SERVED_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"base_url": base_url}) + "\n")
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


#: Seconds handlers get to finish at shutdown.
SHUTDOWN_TIMEOUT = 10.0


def run(
    app: web.Application,
    sock: socket.socket,
    ssl_context: ssl.SSLContext | None,
    base_url: str,
    serving: Callable[[], None],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    internal: tuple[socket.socket, ssl.SSLContext | None] | None = None,
    drain: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM, then shut down gracefully (aiohttp's
    runner, as ``web.run_app`` uses it, with HTTPS on a site that redirects plain HTTP).
    ``serving()`` is called once the app has started and its site accepts connections.
    ``loop_factory``: the event loop to run on (uvloop by default, docs/media.md).
    ``internal``: a worker's own port (and its TLS, if any), served too.
    ``drain``: awaited on SIGTERM before the shutdown, while the site still accepts (the
    node's calls move elsewhere); SIGINT, or a second signal, shuts down at once."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        term = asyncio.Event()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, term.set if drain is not None else stop.set)
        runner = web.AppRunner(
            app,
            access_log_class=RedactingAccessLogger,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            keepalive_timeout=75.0,  # web.run_app's, not the handler's own hour
        )
        await runner.setup()
        try:
            site: web.BaseSite = (
                web.SockSite(runner, sock)
                if ssl_context is None
                else TlsSite(runner, sock, ssl_context, base_url)
            )
            await site.start()
            if internal is not None:
                await web.SockSite(runner, internal[0], ssl_context=internal[1]).start()
            serving()
            await _until(stop, term)
            if term.is_set() and drain is not None:
                loop.add_signal_handler(signal.SIGTERM, stop.set)
                draining = asyncio.ensure_future(drain())
                await asyncio.wait(
                    [draining, asyncio.ensure_future(stop.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                draining.cancel()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve())


async def _until(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
