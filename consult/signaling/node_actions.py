"""What one node asks of a call another node owns, on its behalf (``POST /internal/calls/{id}``,
signed as a node: consult/nodes.py): a message to everyone in the call (a still saved through
this node), the links revoked, the call ended (the consultation is deleted), the notes changed.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .messages import ServerMessage, StillSaved

__all__ = [
    "FORWARDED",
    "NodeAction",
    "decode_node_action",
    "decode_server_message",
    "encode_node_action",
]


class NodeAction(msgspec.Struct, kw_only=True, omit_defaults=True):
    action: Literal["broadcast", "revoke", "end", "notes"]
    #: The server message to send (``broadcast``), as sent on the websocket.
    message: dict[str, Any] | None = None


def encode_node_action(action: NodeAction) -> bytes:
    return msgspec.json.encode(action)


def decode_node_action(body: bytes) -> NodeAction:
    """``msgspec.ValidationError``/``DecodeError`` if it is not one."""
    return msgspec.json.decode(body, type=NodeAction)


#: The messages the HTTP API sends to a call (msgspec cannot decode the whole ServerMessage
#: union: some types share a tag, told apart by the stream they go on).
FORWARDED = (StillSaved,)


def decode_server_message(message: dict[str, Any]) -> ServerMessage:
    """A forwarded message (one of ``FORWARDED``); ``msgspec.ValidationError`` if not."""
    result: ServerMessage = msgspec.convert(message, StillSaved)
    return result
