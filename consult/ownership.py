"""Who owns a consultation's call: the decision, without I/O.

A call lives on one node at a time, its owner, named in the shared store with a lease
(``until``) and an epoch (consult/recording/call_owners.py). A node where a participant
arrives asks ``decide``: keep it (ours), take it (nobody's, lapsed, or its owner's node is dead
or refuses connections: a new epoch), or go to the owner (relay the participant there). A node
that takes no new calls (draining) sends a call nobody holds to another node (``elsewhere``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .recording.nodes import NodeInfo

__all__ = [
    "OWNER_LEASE",
    "OWNER_RENEW",
    "Decision",
    "Go",
    "Keep",
    "Owner",
    "Take",
    "decide",
    "elsewhere",
]

#: The owner renews its calls this often; a lease not renewed for ``OWNER_LEASE`` lapses, and
#: any node takes the call. Short, for a call to be back within 10 s when its node dies.
OWNER_RENEW = timedelta(seconds=1)
OWNER_LEASE = timedelta(seconds=4)


@dataclass(frozen=True)
class Owner:
    """A call's row: its node (None: released), its epoch, its lease."""

    node_id: str | None
    epoch: int
    until: datetime | None


@dataclass(frozen=True)
class Keep:
    """The call is this node's already, at ``epoch``."""

    epoch: int


@dataclass(frozen=True)
class Take:
    """Take the call at ``epoch``, if the row is still at ``expected`` (None: no row yet)."""

    epoch: int
    expected: int | None


@dataclass(frozen=True)
class Go:
    """The call is ``node_id``'s: the participant goes there."""

    node_id: str


Decision = Keep | Take | Go


def decide(
    owner: Owner | None,
    me: str,
    now: datetime,
    alive: Collection[str],
    unreachable: Collection[str] = (),
) -> Decision:
    """What node ``me`` does with a participant of the call whose row is ``owner``; ``alive``:
    the nodes whose heartbeat holds; ``unreachable``: nodes that refused our connection."""
    if owner is None:
        return Take(1, None)
    if owner.node_id == me:
        return Keep(owner.epoch)
    free = owner.node_id is None or owner.until is None or owner.until <= now
    if free or owner.node_id not in alive or owner.node_id in unreachable:
        return Take(owner.epoch + 1, owner.epoch)
    assert owner.node_id is not None
    return Go(owner.node_id)


def elsewhere(nodes: Sequence[NodeInfo], me: str, unreachable: Collection[str] = ()) -> str | None:
    """Where a draining node sends a call nobody holds: the live node, not draining and not
    known unreachable, that comes first by id (so that both of a call's participants go to
    the same one); None if there is none."""
    candidates = sorted(
        n.node_id
        for n in nodes
        if n.node_id != me and not n.draining and n.node_id not in unreachable
    )
    return candidates[0] if candidates else None
