"""A small TCP balancer for tests: the entry that survives a node, as a load balancer in front
of several ``consult serve`` nodes is. Each connection goes to the first backend that accepts
it, in the order given (the preferred node first), bytes piped both ways unchanged.

In a test's event loop: ``await Balancer([("127.0.0.1", port_a), ...]).start()``. As a process
of its own (in another network namespace): ``python -m tests.balancer HOST PORT
BACKEND_HOST:PORT...``; it prints ``listening`` once it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

__all__ = ["Balancer"]


class Balancer:
    def __init__(
        self, backends: Sequence[tuple[str, int]], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.backends = list(backends)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> Balancer:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for host, port in self.backends:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError:
                continue  # nothing listens there (the node is down): the next one
            break
        else:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.close()


async def _main(args: argparse.Namespace) -> None:
    backends = [(b.rsplit(":", 1)[0], int(b.rsplit(":", 1)[1])) for b in args.backends]
    await Balancer(backends, args.host, args.port).start()
    print("listening", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("backends", nargs="+", metavar="HOST:PORT")
    asyncio.run(_main(parser.parse_args()))
