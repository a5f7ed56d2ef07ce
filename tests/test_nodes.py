"""Nodes: announced, beating, draining, leaving; keys compared by fingerprint; requests
between nodes signed and verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consult.errors import Unauthorized
from consult.nodes import (
    MAX_SKEW,
    NODE_AUTH_HEADER,
    NODE_CLIENT_HEADER,
    NodeCall,
    keys_fingerprint,
    node_secret,
    sign,
    verify,
)
from consult.recording.nodes import KeysDiffer
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

TTL = timedelta(seconds=3)
KEYS = keys_fingerprint("staff-key", b"seal-key")


async def test_announce_beat_drain_leave(tmp_path: Path, database_url: str) -> None:
    sealer = TokenSealer(load_seal_key(tmp_path))
    # Two nodes: two stores (two connection pools) on one database (SQLite, then PostgreSQL).
    a = await Store.open(database_url, sealer)
    b = await Store.open(database_url, sealer)
    try:
        now = datetime.now(UTC)
        await a.nodes.announce("a", "http://10.0.0.1:8080", "10.0.0.1", KEYS, now, TTL)
        await b.nodes.announce("b", "http://10.0.0.2:8080", None, KEYS, now, TTL)
        live = await a.nodes.live(now)
        assert [(n.node_id, n.url, n.media_address, n.draining) for n in live] == [
            ("a", "http://10.0.0.1:8080", "10.0.0.1", False),
            ("b", "http://10.0.0.2:8080", None, False),
        ]
        assert live[0].alive_until == now + TTL and live[0].started_at == now
        # b stops beating; a beats on: only a is alive after the first lease.
        assert await a.nodes.beat("a", now + 2 * TTL)
        assert [n.node_id for n in await b.nodes.live(now + TTL)] == ["a"]
        await a.nodes.drain("a")
        info = await b.nodes.get("a")
        assert info is not None and info.draining
        # Announced again (a restart): not draining any more.
        await a.nodes.announce("a", "http://10.0.0.1:8080", "10.0.0.1", KEYS, now, TTL)
        assert not (await b.nodes.live(now))[0].draining
        await a.nodes.leave("a")
        assert await b.nodes.get("a") is None
        assert not await a.nodes.beat("a", now + TTL)
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize(
    ("staff", "seal", "said"),
    [
        ("other-staff-key", b"seal-key", "different staff key"),
        ("staff-key", b"other-seal-key", "different link-seal key"),
        ("other", b"other", "staff key (CONSULT_STAFF_KEY or DATA/staff.key) and link-seal key"),
    ],
)
async def test_other_keys_refused(
    tmp_path: Path, database_url: str, staff: str, seal: bytes, said: str
) -> None:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    try:
        now = datetime.now(UTC)
        await store.nodes.announce("a", "http://a", None, KEYS, now, TTL)
        other = keys_fingerprint(staff, seal)
        with pytest.raises(KeysDiffer) as refused:
            await store.nodes.announce("b", "http://b", None, other, now, TTL)
        message = str(refused.value)
        assert "the node a (http://a)" in message and said in message
        assert "\n" not in message and staff not in message
        assert [n.node_id for n in await store.nodes.live(now)] == ["a"]
        # Once a has lapsed (it died), a node with other keys may serve.
        await store.nodes.announce("b", "http://b", None, other, now + TTL, TTL)
        assert [n.node_id for n in await store.nodes.live(now + TTL)] == ["b"]
    finally:
        await store.close()


def test_fingerprint_holds_no_key() -> None:
    fingerprint = keys_fingerprint("staff-key", b"seal-key")
    assert "staff-key" not in fingerprint and "seal-key" not in fingerprint
    assert fingerprint == keys_fingerprint("staff-key", b"seal-key")
    assert len(fingerprint) <= 80


def test_signed_requests() -> None:
    secret = node_secret("staff-key")
    now = datetime.now(UTC)
    headers = sign(secret, "a", "GET", "/ws?token=x", now, client="203.0.113.9")
    assert headers[NODE_CLIENT_HEADER] == "203.0.113.9"
    assert verify(secret, headers, "GET", "/ws?token=x", now) == NodeCall("a", "203.0.113.9")
    # Without the header: not a node's request (a browser's).
    assert verify(secret, {}, "GET", "/ws?token=x", now) is None
    wrong = [
        (node_secret("other-staff-key"), headers, "GET", "/ws?token=x", now),
        (secret, headers, "GET", "/ws?token=y", now),
        (secret, headers, "POST", "/ws?token=x", now),
        (secret, headers | {NODE_CLIENT_HEADER: "198.51.100.1"}, "GET", "/ws?token=x", now),
        (secret, headers | {NODE_AUTH_HEADER: "a 1 2 3"}, "GET", "/ws?token=x", now),
        (secret, headers | {NODE_AUTH_HEADER: "a x y"}, "GET", "/ws?token=x", now),
        (secret, headers, "GET", "/ws?token=x", now + MAX_SKEW + timedelta(seconds=2)),
    ]
    for args in wrong:
        with pytest.raises(Unauthorized):
            verify(*args)
    body = sign(secret, "b", "POST", "/internal", now, body=b'{"a": 1}')
    assert verify(secret, body, "POST", "/internal", now, body=b'{"a": 1}') == NodeCall("b", None)
    with pytest.raises(Unauthorized):
        verify(secret, body, "POST", "/internal", now, body=b'{"a": 2}')
