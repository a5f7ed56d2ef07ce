"""200 join/leave cycles leave no peer connection, reader, task or track behind.

The server process's memory over such cycles is measured by scripts/soak.py (its own process,
read from /metrics), not here: this process also holds every client's codecs and threads.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from consult.appkeys import HUB
from consult.media.forward import Inlet, Outlet
from consult.media.peer import ServerPeer

from .client import CallClient
from .conftest import create_consultation, token_of
from .soak import run_cycles

pytestmark = pytest.mark.timeout(240)


async def settled_census(samples: int = 5) -> dict[str, int]:
    """The census, element-wise least over a second: a leak stays in every sample, a task
    that the live calls start and finish all the time (a queue put) does not."""
    seen = []
    for _ in range(samples):
        seen.append(census())
        await asyncio.sleep(0.2)
    keys = set().union(*seen)
    return {k: min(s.get(k, 0) for s in seen) for k in keys}


def census() -> dict[str, int]:
    gc.collect()
    kinds = (ServerPeer, RTCPeerConnection, Inlet, Outlet)
    counts = collections.Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds))
    tasks = collections.Counter(t.get_coro().__qualname__ for t in asyncio.all_tasks())
    return dict(counts) | {f"task {name}": n for name, n in tasks.items()}


async def test_two_hundred_join_leave_cycles_leave_nothing_behind(
    http: aiohttp.ClientSession, staff: dict[str, str], server: Any, clients: Any
) -> None:
    customers, stylists = [], []
    for _ in range(4):
        consultation = await create_consultation(http, staff)
        stylist: CallClient = clients("stylist", consultation["stylist_link"])
        await stylist.connect()
        await stylist.start_media()
        stylists.append(stylist)
        token = token_of(consultation["customer_link"])
        customers.append(str(server.make_url("/ws").with_query(token=token)))

    warm = await run_cycles(http, customers, 40)
    assert warm.errors == []
    await asyncio.sleep(3)
    before, stats_before = await settled_census(), server.app[HUB].stats()

    result = await run_cycles(http, customers, 200)
    assert result.errors == [] and result.cycles == 200
    await asyncio.sleep(3)
    after, stats_after = await settled_census(), server.app[HUB].stats()

    assert stats_after == stats_before == {"calls": 4, "participants": 4, "peers": 4, "inlets": 8}
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    # aiortc's decoder threads hand each frame to the loop as a queue-put task: under load a
    # few are in flight at every sample. They are bounded by the live tracks (4 calls, 2 tracks
    # each way, received by the server and by the stylists' clients); a leak over 200 cycles
    # would be in the hundreds.
    in_flight = grown.pop("task Queue.put", 0)
    assert in_flight <= 16, grown
    assert {k: v for k, v in grown.items() if v > 0} == {}, grown
