"""The room: who is in a consultation's call. Pure state, no I/O (the adapter acts on events).

A room holds at most one member per role. A second member for a role replaces the first.
The room's state is derived from its membership: ``waiting`` until both roles are present,
``live`` while they are, and ``ended`` once closed, after which nobody can join.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from ..roles import ROLES, Role, partner_of

__all__ = ["Event", "PeerJoined", "PeerLeft", "Replaced", "Room", "RoomClosed", "StateChanged"]

logger = logging.getLogger(__name__)

RoomState = Literal["waiting", "live", "ended"]
Member = Hashable


@dataclass(frozen=True)
class Replaced:
    """``member`` was replaced by a newer member of the same role and must be disconnected."""

    member: Member


@dataclass(frozen=True)
class PeerJoined:
    """Tell ``member`` that its partner has joined."""

    member: Member


@dataclass(frozen=True)
class PeerLeft:
    """Tell ``member`` that its partner has left."""

    member: Member


@dataclass(frozen=True)
class StateChanged:
    state: RoomState


Event = Replaced | PeerJoined | PeerLeft | StateChanged


class RoomClosed(Exception):
    pass


class Room:
    def __init__(self, consultation_id: str) -> None:
        self.consultation_id = consultation_id
        self._members: dict[Role, Member] = {}
        self._closed = False
        self._state: RoomState = "waiting"

    @property
    def state(self) -> RoomState:
        return self._state

    def member(self, role: Role) -> Member | None:
        return self._members.get(role)

    def role_of(self, member: Member) -> Role | None:
        for role, current in self._members.items():
            if current == member:
                return role
        return None

    @property
    def empty(self) -> bool:
        return not self._members

    def join(self, role: Role, member: Member) -> list[Event]:
        if self._closed:
            raise RoomClosed(self.consultation_id)
        events: list[Event] = []
        previous = self._members.get(role)
        if previous == member:
            return events
        self._members[role] = member
        if previous is not None:
            events.append(Replaced(previous))
        partner = self._members.get(partner_of(role))
        if partner is not None:
            events.append(PeerJoined(partner))
        self._update_state(events)
        return events

    def leave(self, member: Member) -> list[Event]:
        """``member`` left; a member that was already replaced leaves without a trace."""
        events: list[Event] = []
        role = self.role_of(member)
        if role is None:
            return events
        del self._members[role]
        partner = self._members.get(partner_of(role))
        if partner is not None:
            events.append(PeerLeft(partner))
        self._update_state(events)
        return events

    def close(self) -> list[Event]:
        """End the room: nobody can join again. The caller disconnects the members it holds."""
        events: list[Event] = []
        self._members.clear()
        self._closed = True
        self._update_state(events)
        return events

    def _update_state(self, events: list[Event]) -> None:
        if self._closed:
            state: RoomState = "ended"
        elif all(role in self._members for role in ROLES):
            state = "live"
        else:
            state = "waiting"
        self._set_state(state, events)

    def _set_state(self, state: RoomState, events: list[Event]) -> None:
        if state == self._state:
            return
        logger.info("room %s: %s -> %s", self.consultation_id, self._state, state)
        self._state = state
        events.append(StateChanged(state))
