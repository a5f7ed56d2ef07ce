"""Conversations across nodes: two real `consult serve` nodes on one database (a shared SQLite
file, then PostgreSQL). A message stored through node B reaches the pages, the call and the
inbox on node A in order, once each; who has a conversation open on A decides B's email; a
link from B to A that loses its hints and breaks loses nothing; the swatch on screen is the
store's, whichever node a call is on.

Node A is reached by B through a proxy (``A_VIA``) the tests can make swallow bytes and cut."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from consult.recording.database import Database
from consult.recording.presence import Presence
from consult.salon import DAYS

from .attachment_media import pdf
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, token_of
from .mail import SALON
from .postgres_server import Postgres
from .process import free_port, start_serve, wait_healthy
from .smtp import SmtpServer
from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]

STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}


@dataclass
class TwoNodes:
    a: aiohttp.ClientSession
    b: aiohttp.ClientSession
    port_a: int
    port_b: int
    #: B's way to A: what B's hints to A go through.
    a_via: TcpProxy
    database_url: str
    smtp: SmtpServer

    def ws(self, node: str, path: str, link: str | None = None) -> str:
        port = self.port_a if node == "a" else self.port_b
        query = f"?token={token_of(link)}" if link else ""
        return f"ws://127.0.0.1:{port}{path}{query}"


async def _metric(session: aiohttp.ClientSession, name: str) -> float:
    async with session.get("/metrics", headers=STAFF) as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def links_up(*sessions: aiohttp.ClientSession) -> None:
    """Until every node's links to and from the other are up."""
    async with asyncio.timeout(60):
        for session in sessions:
            for direction in ("out", "in"):
                while await _metric(session, f"consult_bus_links_{direction}") < 1:
                    await asyncio.sleep(0.1)


def _drained(proc: subprocess.Popen[str], name: str) -> subprocess.Popen[str]:
    """The node's output read as it comes (a full pipe would stop it), and printed when it
    stops: shown with a failing test."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    _logs[proc.pid] = (name, lines)
    return proc


_logs: dict[int, tuple[str, list[str]]] = {}


def _stop(proc: subprocess.Popen[str]) -> None:
    name, lines = _logs.pop(proc.pid, ("node", []))
    print(f"--- {name}, last lines:", *lines[-40:], sep="\n")
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TwoNodes]:
    root = tmp_path_factory.mktemp("nodes")
    if request.param == "sqlite":
        # Two processes on one SQLite file (WAL), as a machine's workers share it.
        url = f"sqlite+aiosqlite:///{root / 'shared.db'}"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.create_database()
    smtp = SmtpServer(free_port())
    smtp.start()
    port_a, port_b = free_port(), free_port()
    a_via = TcpProxy(port_a)
    await a_via.start()
    seal = Fernet.generate_key()
    for name in ("a", "b"):
        (root / name).mkdir()
        (root / name / "link-seal.key").write_bytes(seal)
    env = {
        "CONSULT_DATABASE_URL": url,
        "CONSULT_STAFF_KEY": STAFF_KEY,
        "CONSULT_SMTP_URL": smtp.url,
        "CONSULT_MAIL_FROM": SALON,
        "CONSULT_MAIL_COALESCE": "0s",
        "CONSULT_PUBLIC_URL": "http://links.test",
    }
    a = _drained(
        start_serve(
            root / "a",
            port_a,
            environment=env
            | {"CONSULT_NODE_ID": "node-a", "CONSULT_NODE_URL": f"http://127.0.0.1:{a_via.port}"},
        ),
        "node A",
    )
    b: subprocess.Popen[str] | None = None
    try:
        # A migrates the database (B finds it done): slow on a loaded machine.
        await wait_healthy(port_a, seconds=60)
        b = _drained(
            start_serve(root / "b", port_b, environment=env | {"CONSULT_NODE_ID": "node-b"}),
            "node B",
        )
        await wait_healthy(port_b, seconds=60)
        async with (
            aiohttp.ClientSession(f"http://127.0.0.1:{port_a}", headers=STAFF) as session_a,
            aiohttp.ClientSession(f"http://127.0.0.1:{port_b}", headers=STAFF) as session_b,
        ):
            await links_up(session_a, session_b)
            yield TwoNodes(session_a, session_b, port_a, port_b, a_via, url, smtp)
    finally:
        for proc in (a, b):
            if proc is not None:
                _stop(proc)
        await a_via.close()
        smtp.stop()


async def _post(session: aiohttp.ClientSession, cid: str, text: str, id_: str) -> dict[str, Any]:
    async with session.post(
        f"/api/consultations/{cid}/messages", json={"text": text, "id": id_}
    ) as r:
        assert r.status == 201, await r.text()
        message: dict[str, Any] = (await r.json())["message"]
        return message


async def _chats(client: CallClient, count: int, type_: str = "chat") -> list[dict[str, Any]]:
    return [await client.expect(type_, timeout=20) for _ in range(count)]


async def _updates(inbox: CallClient, cid: str, count: int) -> list[dict[str, Any]]:
    """The inbox's next ``count`` updates of one conversation (others' may come between: a
    link made again tells the inbox of every conversation changed lately)."""
    updates: list[dict[str, Any]] = []
    while len(updates) < count:
        update = await inbox.expect("message", timeout=20)
        if update["consultation_id"] == cid:
            updates.append(update)
    return updates


def _in_order(seqs: Iterable[int], first: int, last: int) -> None:
    assert list(seqs) == list(range(first, last + 1))


async def test_messages_through_both_nodes_reach_a_in_order_once(nodes: TwoNodes) -> None:
    """The customer's page, the stylist's call and the inbox on A; staff write through B while
    the customer writes through A: everyone on A gets every message once, in order."""
    consultation = await create_consultation(nodes.b, STAFF, customer_name="Mei")
    cid = consultation["id"]
    customer = CallClient(
        nodes.a, nodes.ws("a", "/ws/conversation", consultation["customer_link"]), "customer"
    )
    stylist = CallClient(nodes.a, nodes.ws("a", "/ws", consultation["stylist_link"]), "stylist")
    inbox = CallClient(nodes.a, nodes.ws("a", "/ws/inbox"), "staff")
    try:
        await customer.connect("conversation")
        await stylist.connect("welcome")
        await inbox.connect(None)

        async def customer_writes() -> None:
            for i in range(10):
                await customer.send({"type": "chat", "text": f"customer {i}", "id": f"c{i}"})
                await asyncio.sleep(0.01)

        async def staff_write() -> list[dict[str, Any]]:
            return [await _post(nodes.b, cid, f"staff {i}", f"s{i}") for i in range(10)]

        _, posted = await asyncio.gather(customer_writes(), staff_write())
        for client in (customer, stylist):
            got = await _chats(client, 20)
            _in_order((m["seq"] for m in got), 1, 20)
            assert {m["text"] for m in got} == {f"customer {i}" for i in range(10)} | {
                f"staff {i}" for i in range(10)
            }
            # Each staff message as B stored it.
            by_seq = {m["seq"]: m for m in got}
            for message in posted:
                assert by_seq[message["seq"]] == message
        updates = await _chats(inbox, 20, "message")
        assert all(u["consultation_id"] == cid for u in updates)
        _in_order((u["message"]["seq"] for u in updates), 1, 20)
        # A read mark moved through B reaches the customer on A.
        async with nodes.b.post(f"/api/consultations/{cid}/read", json={"seq": 20}) as r:
            assert r.status == 200 and (await r.json())["unread"] == 0
        mark = await customer.expect("read")
        assert (mark["seq"], mark["by"]) == (20, "stylist")
        assert (await inbox.expect("read"))["unread"] == 0
        # Nothing twice: the next message anywhere is the 21st.
        await _post(nodes.b, cid, "last", "s-last")
        assert (await customer.expect("chat"))["seq"] == 21
        assert (await stylist.expect("chat"))["seq"] == 21
    finally:
        for client in (customer, stylist, inbox):
            await client.close()
    # The same conversation through B's API: the 21 messages, numbered without a gap.
    async with nodes.b.get(f"/api/consultations/{cid}/messages") as r:
        history = (await r.json())["history"]
    _in_order((m["seq"] for m in history if m["type"] == "chat"), 1, 21)


async def _present_elsewhere(nodes: TwoNodes, cid: str) -> set[str]:
    """The sides node B sees open on other nodes (the store's rows, read as B reads them)."""
    db = Database.open(nodes.database_url)
    try:
        return set(await Presence(db).elsewhere(cid, "node-b", datetime.now(UTC)))
    finally:
        await db.dispose()


async def _until_present(nodes: TwoNodes, cid: str, sides: set[str]) -> None:
    async with asyncio.timeout(15):
        while await _present_elsewhere(nodes, cid) != sides:
            await asyncio.sleep(0.05)


async def _emails(session: aiohttp.ClientSession, cid: str) -> list[dict[str, Any]]:
    async with session.get(f"/api/consultations/{cid}") as r:
        emails: list[dict[str, Any]] = (await r.json())["email"]["emails"]
        return emails


async def test_a_customer_on_a_is_present_for_staff_writing_through_b(nodes: TwoNodes) -> None:
    consultation = await create_consultation(
        nodes.a, STAFF, customer_name="Jane", customer_email="jane@example.com"
    )
    cid = consultation["id"]
    customer = CallClient(
        nodes.a, nodes.ws("a", "/ws/conversation", consultation["customer_link"]), "customer"
    )
    await customer.connect("conversation")
    try:
        # Shared before the page was welcomed.
        assert await _present_elsewhere(nodes, cid) == {"customer"}
        first = await _post(nodes.b, cid, "Are you there?", "s1")
        assert (await customer.expect("chat"))["seq"] == first["seq"]
    finally:
        await customer.close()
    await _until_present(nodes, cid, set())
    gone = await _post(nodes.b, cid, "We have a slot at 3pm", "s2")
    async with asyncio.timeout(20):
        while not (emails := await _emails(nodes.b, cid)):
            await asyncio.sleep(0.05)
    # One email, for the message written once the customer had gone (none while she was
    # there on A), queued by B alone.
    [email] = emails
    assert email["kind"] == "reply"
    assert datetime.fromisoformat(email["queued_at"]) >= datetime.fromisoformat(gone["at"])
    [message] = await nodes.smtp.mailbox.wait(1)
    assert message["To"] == "jane@example.com"
    # The same one seen through A: one row in the shared outbox.
    assert [e["queued_at"] for e in await _emails(nodes.a, cid)] == [email["queued_at"]]


async def test_a_link_that_loses_hints_and_breaks_loses_nothing(nodes: TwoNodes) -> None:
    """B's hints to A vanish on the way, then the link breaks: once it is made again, A's
    pages have every message, in order, once."""
    consultation = await create_consultation(nodes.b, STAFF, customer_name="Ann")
    cid = consultation["id"]
    customer = CallClient(
        nodes.a, nodes.ws("a", "/ws/conversation", consultation["customer_link"]), "customer"
    )
    inbox = CallClient(nodes.a, nodes.ws("a", "/ws/inbox"), "staff")
    try:
        await customer.connect("conversation")
        await inbox.connect(None)
        await _post(nodes.b, cid, "before", "s0")
        assert (await customer.expect("chat"))["seq"] == 1
        await _updates(inbox, cid, 1)

        nodes.a_via.swallowing = True
        for i in range(1, 4):
            await _post(nodes.b, cid, f"lost hint {i}", f"s{i}")
        async with asyncio.timeout(10):
            while nodes.a_via.swallowed == 0:
                await asyncio.sleep(0.05)
        nodes.a_via.cut()
        nodes.a_via.swallowing = False
        await links_up(nodes.a, nodes.b)
        got = await _chats(customer, 3)
        assert [m["text"] for m in got] == [f"lost hint {i}" for i in range(1, 4)]
        _in_order((m["seq"] for m in got), 2, 4)
        # The inbox too, from where it was.
        _in_order((u["message"]["seq"] for u in await _updates(inbox, cid, 3)), 2, 4)
        await _post(nodes.b, cid, "after", "s4")
        assert (await customer.expect("chat"))["seq"] == 5
        assert [u["message"]["seq"] for u in await _updates(inbox, cid, 1)] == [5]
    finally:
        nodes.a_via.swallowing = False
        await customer.close()
        await inbox.close()


async def test_links_revoked_through_b_end_the_pages_on_a(nodes: TwoNodes) -> None:
    consultation = await create_consultation(nodes.a, STAFF, customer_name="Rae")
    customer = CallClient(
        nodes.a, nodes.ws("a", "/ws/conversation", consultation["customer_link"]), "customer"
    )
    try:
        await customer.connect("conversation")
        async with nodes.b.post(f"/api/consultations/{consultation['id']}/revoke-links") as r:
            assert r.status == 200
        assert (await customer.expect("error"))["code"] == "revoked"
        assert await customer.closed() == 4403
    finally:
        await customer.close()


async def test_the_swatch_on_screen_is_the_same_on_either_node(nodes: TwoNodes) -> None:
    """Shown in a call on A; the call later held on B shows the same swatch."""
    consultation = await create_consultation(nodes.a, STAFF, customer_name="Lin")
    async with nodes.a.get("/api/swatches") as r:
        swatch = (await r.json())["swatches"][3]
    stylist = CallClient(nodes.a, nodes.ws("a", "/ws", consultation["stylist_link"]), "stylist")
    await stylist.connect()
    try:
        await stylist.send({"type": "swatch", "swatch_id": swatch["id"]})
        assert (await stylist.expect("swatch"))["swatch"] == swatch
    finally:
        await stylist.close()
    customer = CallClient(nodes.b, nodes.ws("b", "/ws", consultation["customer_link"]), "customer")
    try:
        welcome = await customer.connect()
        assert welcome["swatch"] == swatch
    finally:
        await customer.close()


async def test_the_away_notice_given_through_b_reaches_the_customer_on_a(
    nodes: TwoNodes,
) -> None:
    """The customer's file goes up through B while the salon is closed: B gives the away notice
    once, and the customer's page on A shows it. (Last: the salon stays closed.)"""
    other_day = DAYS[(datetime.now(UTC) + timedelta(days=2)).weekday()]
    hours = {"timezone": "UTC", "hours": {other_day: [["09:00", "10:00"]]},
             "away_message": "Closed, back soon."}  # fmt: skip
    async with nodes.a.put("/api/salon", json=hours) as r:
        assert r.status == 200
    consultation = await create_consultation(nodes.a, STAFF, customer_name="Ivy")
    link = consultation["customer_link"]
    customer = CallClient(nodes.a, nodes.ws("a", "/ws/conversation", link), "customer")
    try:
        await customer.connect("conversation")
        # As the customer (her link's token in place of the staff key).
        async with nodes.b.post(
            f"/api/consultations/{consultation['id']}/attachments",
            params={"kind": "file", "id": "f1", "name": "nails.pdf"},
            data=pdf(),
            headers={
                "Authorization": f"Bearer {token_of(link)}",
                "Content-Type": "application/pdf",
            },
        ) as r:
            assert r.status == 201, await r.text()
        sent = await customer.expect("chat")
        assert sent["attachment"]["kind"] == "file" and sent["seq"] == 1
        away = await customer.expect("away")
        assert away["message"] == "Closed, back soon." and away["next_open"]
    finally:
        await customer.close()
