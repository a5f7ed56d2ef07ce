"""The one place we rely on aioice internals: fail loudly if they move."""

from __future__ import annotations

import aioice.ice
from aioice import Connection

from consult.media import ice


def test_aioice_still_gathers_through_get_host_addresses() -> None:
    ice.check_internals()


async def test_host_addresses_are_offered_only_inside_the_block() -> None:
    ice.install()
    assert aioice.ice.get_host_addresses is not None
    with ice.host_addresses(["127.0.0.1"]):
        conn = Connection(ice_controlling=True, components=1)
        await conn.gather_candidates()
    try:
        hosts = [c.host for c in conn.local_candidates]
        assert hosts == ["127.0.0.1"]
    finally:
        await conn.close()
    # Outside the block aioice's own choice applies again, which never includes loopback.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
