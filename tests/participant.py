"""A participant in a process of its own: ``python -m tests.participant WS_URL ROLE``.

It joins, sends media and prints ``ready`` once its peer connection is up, then stays. A test
stops it with SIGSTOP: its websocket and its UDP go silent at once, with no FIN and no
goodbye, as when a phone's network goes.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from .client import CallClient


async def main(ws_url: str, role: str) -> None:
    async with aiohttp.ClientSession() as http:
        client = CallClient(http, ws_url, role)
        await client.connect()
        await client.start_media()
        assert client.pc is not None
        await client.wait_for(lambda: client.pc.connectionState == "connected")
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
