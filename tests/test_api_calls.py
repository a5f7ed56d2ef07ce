"""Between nodes, in one process: ``/internal/calls/{id}`` only for a request signed as a
node; a ``/ws`` claiming to be relayed by a node and not signed as one refused; a call whose
owner is alive but cannot be reached answered with ``owner-unreachable``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from consult.appkeys import NODE, STORE
from consult.nodes import NODE_AUTH_HEADER

from .conftest import token_of


async def test_node_actions_need_a_node_s_signature(
    server: TestServer, http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> None:
    path = f"/internal/calls/{consultation['id']}"
    body = b'{"action": "revoke"}'
    async with http.post(path, data=body) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "unauthorized"
    forged = {NODE_AUTH_HEADER: f"node-x {int(datetime.now(UTC).timestamp())} {'0' * 64}"}
    async with http.post(path, data=body, headers=forged) as r:
        assert r.status == 401
    node = server.app[NODE]
    # Signed for another body: refused too.
    async with http.post(path, data=body, headers=node.sign("POST", path, body=b"{}")) as r:
        assert r.status == 401
    async with http.post(path, data=body, headers=node.sign("POST", path, body=body)) as r:
        assert r.status == 204  # no call here: nothing to do
    bad = b'{"action": "explode"}'
    async with http.post(path, data=bad, headers=node.sign("POST", path, body=bad)) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid-request"


async def test_a_forged_relay_is_refused(
    server: TestServer, http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> None:
    token = token_of(consultation["customer_link"])
    headers = {NODE_AUTH_HEADER: "node-x 1 abc", "X-Consult-Client": "203.0.113.9"}
    async with http.get(f"/ws?token={token}", headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "unauthorized"


async def test_an_owner_that_cannot_be_reached(
    server: TestServer, http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> None:
    store = server.app[STORE]
    now = datetime.now(UTC)
    # Another node, alive by its heartbeat, owns the call; its URL leads nowhere (no route
    # from this loopback-only network): not a refusal, so it is not taken for dead.
    await store.nodes.announce(
        "node-x", "http://10.255.255.1:9", None, server.app[NODE].keys, now, timedelta(minutes=1)
    )
    assert await store.call_owners.take(
        consultation["id"], "node-x", 1, None, now, timedelta(minutes=1)
    )
    token = token_of(consultation["customer_link"])
    async with http.ws_connect(f"/ws?token={token}") as ws:
        message = await ws.receive_json(timeout=15)
        assert message["type"] == "error" and message["code"] == "owner-unreachable"
        closed = await ws.receive(timeout=15)
        assert closed.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1013  # the page tries again
    # Nothing was taken: the call is still the other node's.
    owner = await store.call_owners.get(consultation["id"])
    assert owner is not None and (owner.node_id, owner.epoch) == ("node-x", 1)
