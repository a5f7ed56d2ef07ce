"""Consent to record a call, as a pure state machine (no I/O).

Either participant may ask; the call is recorded only once both have agreed, each on their own
screen (asking is not agreeing: the asker confirms too). One refusal ends the question; a
request to stop, or either participant leaving, ends the recording. The hub applies the
returned events: it starts and stops the recording and tells both pages (``recording``
messages, docs/protocol.md).

States: ``idle`` -> ``asked`` -> ``recording`` -> ``idle``; ``asked`` -> ``idle`` on a refusal
or departure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from ..roles import ROLES, Role

__all__ = ["Asked", "Consent", "ConsentEvent", "ConsentState", "Ended", "Reason", "Started"]

logger = logging.getLogger(__name__)

ConsentState = Literal["idle", "asked", "recording"]
#: Why a question or a recording ended.
Reason = Literal["refused", "stopped", "left", "storage-full", "failed"]


class ConsentEvent:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Asked(ConsentEvent):
    """A question is open (or an agreement was added to it): tell both pages."""

    by: Role
    agreed: tuple[Role, ...]


@dataclass(frozen=True, slots=True)
class Started(ConsentEvent):
    """Both agreed: record now."""


@dataclass(frozen=True, slots=True)
class Ended(ConsentEvent):
    """The question or the recording ended (``was_recording``: a recording must stop)."""

    reason: Reason
    by: Role | None
    was_recording: bool


class Consent:
    def __init__(self, label: str) -> None:
        self._label = label
        self._state: ConsentState = "idle"
        self.asked_by: Role | None = None
        self._agreed: set[Role] = set()

    @property
    def state(self) -> ConsentState:
        return self._state

    @property
    def agreed(self) -> tuple[Role, ...]:
        return tuple(r for r in ROLES if r in self._agreed)

    def ask(self, role: Role) -> list[ConsentEvent]:
        """``role`` asks to record; asking again, or while recording, changes nothing."""
        if self._state != "idle":
            return []
        self.asked_by = role
        self._agreed = set()
        self._set_state("asked")
        return [Asked(role, ())]

    def answer(self, role: Role, agree: bool) -> list[ConsentEvent]:
        """``role``'s answer on its own screen; answers to no open question are ignored."""
        if self._state != "asked":
            return []
        assert self.asked_by is not None
        if not agree:
            return self._end("refused", role)
        if role in self._agreed:
            return []
        self._agreed.add(role)
        if self._agreed != set(ROLES):
            return [Asked(self.asked_by, self.agreed)]
        self._set_state("recording")
        return [Started()]

    def stop(self, role: Role | None, reason: Reason = "stopped") -> list[ConsentEvent]:
        """End the question or the recording: asked by ``role``, or the server's ``reason``."""
        if self._state == "idle":
            return []
        return self._end(reason, role)

    def leave(self, role: Role) -> list[ConsentEvent]:
        return self.stop(role, "left")

    def _end(self, reason: Reason, by: Role | None) -> list[ConsentEvent]:
        was_recording = self._state == "recording"
        self.asked_by = None
        self._agreed = set()
        self._set_state("idle")
        return [Ended(reason, by, was_recording)]

    def _set_state(self, state: ConsentState) -> None:
        if state == self._state:
            return
        logger.info("%s: recording consent %s -> %s", self._label, self._state, state)
        self._state = state
