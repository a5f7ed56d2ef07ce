"""The bus between nodes: its pure parts (hints on the wire, which links to hold, the delays
before a link is made again) in milliseconds, and who may link to a node. Two real nodes:
tests/test_conversation_nodes.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from consult.bus import (
    BUS_PATH,
    RECONNECT,
    AwayNoticeHint,
    Connect,
    Disconnect,
    Links,
    LinksRevokedHint,
    MessagesHint,
    Peer,
    ReadHint,
    decode,
    encode,
)
from consult.nodes import node_secret, sign

from .conftest import STAFF_KEY


def test_hints_go_over_the_wire_and_back() -> None:
    for hint in (
        MessagesHint("c1", 7),
        ReadHint("c1", "stylist"),
        AwayNoticeHint("c2"),
        LinksRevokedHint("c3"),
    ):
        assert decode(encode(hint)) == hint
    assert encode(MessagesHint("c1", 7)) == b'{"type":"messages","consultation_id":"c1","seq":7}'


@pytest.mark.parametrize(
    "wire",
    [
        b"not json",
        b'{"type":"messages","consultation_id":"c1"}',
        b'{"type":"read","consultation_id":"c1","by":"staff"}',
        b'{"type":"shout","consultation_id":"c1"}',
        b'{"type":"messages","consultation_id":"c1","seq":"7"}',
    ],
)
def test_what_is_no_hint_is_refused(wire: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode(wire)


def test_a_link_per_live_peer_made_and_dropped_as_the_peers_change() -> None:
    links = Links("a")
    b, c = Peer("b", "http://10.0.0.2:8080"), Peer("c", "http://10.0.0.3:8080")
    # Itself is among the live nodes: no link to itself.
    assert links.update([Peer("a", "http://10.0.0.1:8080"), b]) == [Connect(b)]
    assert links.update([b]) == []
    assert links.update([b, c]) == [Connect(c)]
    # b moved to another URL: its link is made again there; c is gone.
    moved = Peer("b", "http://10.0.0.9:8080")
    assert links.update([moved]) == [Disconnect("b"), Disconnect("c"), Connect(moved)]
    assert dict(links.peers) == {"b": moved}
    assert links.update([]) == [Disconnect("b")]


def test_reconnecting_backs_off_to_a_ceiling() -> None:
    delays = [RECONNECT.delay(n).total_seconds() for n in range(1, 9)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


async def test_only_the_services_nodes_link_here(server: TestServer) -> None:
    url = server.make_url(BUS_PATH)
    now = datetime.now(UTC)
    forged = sign(node_secret("another staff key"), "node-x", "GET", BUS_PATH, now)
    stale = sign(node_secret(STAFF_KEY), "node-x", "GET", BUS_PATH, now - timedelta(hours=1))
    async with aiohttp.ClientSession() as session:
        for headers in ({}, forged, stale):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url, headers=headers)
            assert refused.value.status == 401
        async with session.get(url, headers=forged) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        # A node of this service (the staff key's secret, now) is linked.
        signed = sign(node_secret(STAFF_KEY), "node-x", "GET", BUS_PATH, datetime.now(UTC))
        async with session.ws_connect(url, headers=signed) as ws:
            await ws.send_bytes(encode(MessagesHint("unknown", 1)))
            await ws.send_str("not a hint")  # logged and ignored: the link stays
            await ws.send_bytes(encode(ReadHint("unknown", "customer")))
            # The node never answers on a link, nor closes it for that.
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.3)
