"""Who owns a call: the pure decision (milliseconds, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consult.ownership import Go, Keep, Owner, Take, decide, elsewhere
from consult.recording.nodes import NodeInfo

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
LATER = NOW + timedelta(seconds=3)


def node(node_id: str, draining: bool = False) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}", None, "k", NOW, LATER, draining)


def test_nobody_s_call_is_taken() -> None:
    assert decide(None, "a", NOW, {"a"}) == Take(1, None)
    released = Owner(None, 4, None)
    assert decide(released, "a", NOW, {"a", "b"}) == Take(5, 4)


def test_ours_is_kept() -> None:
    assert decide(Owner("a", 3, LATER), "a", NOW, {"a"}) == Keep(3)
    # Even lapsed (a database outage kept us from renewing): nobody took it since.
    assert decide(Owner("a", 3, NOW), "a", NOW, {"a"}) == Keep(3)


def test_a_live_owner_is_gone_to() -> None:
    assert decide(Owner("b", 2, LATER), "a", NOW, {"a", "b"}) == Go("b")


def test_taken_from_a_lapsed_lease_or_a_dead_node() -> None:
    assert decide(Owner("b", 2, NOW), "a", NOW, {"a", "b"}) == Take(3, 2)
    # b's heartbeat lapsed: its lease does not hold it.
    assert decide(Owner("b", 2, LATER), "a", NOW, {"a"}) == Take(3, 2)
    # b refuses connections: dead, whatever its heartbeat says.
    assert decide(Owner("b", 2, LATER), "a", NOW, {"a", "b"}, unreachable={"b"}) == Take(3, 2)


def test_a_draining_node_sends_new_calls_elsewhere() -> None:
    nodes = [node("a", draining=True), node("c"), node("b")]
    assert elsewhere(nodes, "a") == "b"  # the first by id, for both participants alike
    assert elsewhere(nodes, "a", unreachable={"b"}) == "c"
    assert elsewhere([node("a", draining=True), node("b", draining=True)], "a") is None
    assert elsewhere([node("a")], "a") is None
