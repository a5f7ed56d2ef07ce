"""The HTTPS port: TLS, and for a browser that speaks plain HTTP to it, a redirect.

Someone who types ``http://`` for the service's ``https://`` address would otherwise get an
empty reply (the TLS handshake fails on a plain request). Each connection's first byte is
read without taking it off the socket (``MSG_PEEK``): a TLS handshake record goes to aiohttp
over TLS as usual; anything else is read as a plain HTTP request and answered with a redirect to
the same path on the service's ``https://`` base URL, then closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl

from aiohttp import web

__all__ = ["TlsSite"]

#: The content type of a TLS record that opens a handshake (a ClientHello).
TLS_HANDSHAKE = 0x16
#: How long a connection may stay silent, and how much of a plain request is read.
FIRST_BYTE_TIMEOUT = 30.0
MAX_PLAIN_HEAD = 8192
#: A path and query as a request line carries it: printable ASCII, no spaces.
_TARGET = re.compile(rb"/[\x21-\x7e]*")


class TlsSite(web.BaseSite):
    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        base_url: str,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._sock = sock
        self._base_url = base_url.rstrip("/")
        self._accepting: asyncio.Task[None] | None = None
        self._routing: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"https://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        self._sock.setblocking(False)
        self._accepting = asyncio.create_task(self._accept())

    async def stop(self) -> None:
        tasks = [t for t in (self._accepting, *self._routing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sock.close()
        await super().stop()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(self._sock)
            task = asyncio.create_task(self._route(conn))
            self._routing.add(task)
            task.add_done_callback(self._routing.discard)

    async def _route(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        handed_over = False
        try:
            async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
                await _readable(loop, conn)
            first = conn.recv(1, socket.MSG_PEEK)
            if first and first[0] == TLS_HANDSHAKE:
                handed_over = True
                server = self._runner.server
                assert server is not None  # set up before any site starts
                await loop.connect_accepted_socket(server, conn, ssl=self._ssl_context)
            elif first:
                async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
                    await self._redirect(loop, conn)
        except (OSError, TimeoutError, ssl.SSLError):
            pass  # a client that went away, or failed the handshake: nothing to answer
        finally:
            if not handed_over:
                conn.close()

    async def _redirect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        head = b""
        while b"\r\n" not in head and len(head) < MAX_PLAIN_HEAD:
            chunk = await loop.sock_recv(conn, 4096)
            if not chunk:
                break
            head += chunk
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        target = parts[1] if len(parts) == 3 and _TARGET.fullmatch(parts[1]) else b"/"
        location = self._base_url + target.decode("ascii")
        body = f"This port serves HTTPS: {location}\n".encode()
        head_out = (
            "HTTP/1.1 307 Temporary Redirect\r\n"
            f"Location: {location}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        await loop.sock_sendall(conn, head_out.encode() + body)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)


async def _readable(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        # Called again while the socket stays readable, until the reader is removed.
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())
