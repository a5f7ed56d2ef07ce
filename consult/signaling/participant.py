"""One participant's websocket connection to a consultation's call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web

from ..errors import ConsultError
from ..roles import Role
from .messages import Error, MediaState, ServerMessage, encode

if TYPE_CHECKING:
    from ..media.peer import ServerPeer

__all__ = ["Participant"]

logger = logging.getLogger(__name__)


class Participant:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        consultation_id: str,
        role: Role,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.ws = ws
        #: Told the code of every error sent to this participant (consult/metrics.py counts).
        self._on_error = on_error
        self.consultation_id = consultation_id
        self.role = role
        self.peer: ServerPeer | None = None
        #: Whether this participant's media got through, once known (told to both sides).
        self.media: MediaState | None = None
        self._disconnecting = False
        # Until the welcome is out, messages for this participant wait: welcome comes first.
        self._held: list[ServerMessage] | None = []

    def __repr__(self) -> str:
        return f"<Participant {self.consultation_id}/{self.role} {id(self):x}>"

    @property
    def connected(self) -> bool:
        return not self._disconnecting and not self.ws.closed

    async def welcome(self, message: ServerMessage) -> None:
        """Send the welcome, then whatever arrived for this participant meanwhile."""
        held, self._held = self._held or [], None
        await self.send(message)
        for later in held:
            await self.send(later)

    async def send(self, message: ServerMessage) -> None:
        """Send ``message`` if the connection is still open; a gone client is not an error."""
        if self._held is not None and not isinstance(message, Error):
            self._held.append(message)
            return
        if self.ws.closed:
            return
        try:
            await self.ws.send_str(encode(message))
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("%r: send failed: %s", self, exc)

    async def send_error(self, error: ConsultError) -> None:
        if self._on_error is not None:
            self._on_error(error.code)
        await self.send(Error(code=error.code, message=error.message))

    async def disconnect(
        self, error: ConsultError | None = None, code: int = WSCloseCode.OK
    ) -> None:
        """Close the connection once, telling the client why first; safe to call again."""
        if self._disconnecting:
            return
        self._disconnecting = True
        if error is not None:
            await self.send_error(error)
            code = error.close_code
        await self.close_peer()
        message = (error.code if error is not None else "").encode()
        await self.ws.close(code=code, message=message)

    async def close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()
