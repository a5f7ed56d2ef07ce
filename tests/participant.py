"""A participant in a process of its own: ``python -m tests.participant WS_URL ROLE [options]``.

It joins, sends media and prints ``ready`` once its peer connection is up, then stays. A test
stops it with SIGSTOP: its websocket and its UDP go silent at once, with no FIN and no
goodbye, as when a phone's network goes.

``--address`` offers that host address; ``--ice`` uses the welcome's ICE servers, as a page
does; ``--report`` also prints, as they happen, ``media {json}`` for each ``media`` message,
``candidates LOCAL REMOTE`` (the candidate types media goes through) after ``ready``, and
``partner-video`` once the partner's frames arrive. A process of its own can run in another
network namespace (tests/turn.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp

from .client import CallClient
from .media import SOURCES


async def main(args: argparse.Namespace) -> None:
    partner = next(role for role in SOURCES if role != args.role)
    async with aiohttp.ClientSession() as http:
        client = CallClient(
            http, args.ws_url, args.role, host_addresses=(args.address,), use_ice_servers=args.ice
        )
        await client.connect()
        await client.start_media()
        assert client.pc is not None
        pc = client.pc

        async def messages() -> None:
            while True:
                message = await client.messages.get()
                if args.report and message["type"] == "media":
                    print("media", json.dumps(message), flush=True)

        reader = asyncio.ensure_future(messages())
        await client.wait_for(lambda: pc.connectionState == "connected", timeout=3600)
        print("ready", flush=True)
        if args.report:
            print("candidates", *(client.selected_candidates() or ()), flush=True)
            await client.wait_for(lambda: len(client.partner_frames(partner)) >= 5, timeout=3600)
            print("partner-video", flush=True)
        await reader


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("ws_url")
    parser.add_argument("role", choices=sorted(SOURCES))
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--ice", action="store_true")
    parser.add_argument("--report", action="store_true")
    asyncio.run(main(parser.parse_args()))
