"""Websocket messages of protocol v1 (docs/protocol.md), typed and validated.

``parse_message`` is the only way bytes from a client become a message: it checks size, JSON
shape, the type against what the sender's role may send, and every field, and raises a
ProtocolError subclass that the adapter reports as an ``error`` message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ..conversation import AwayNoticed, History, Posted, ReadMoved
from ..errors import MalformedMessage, MessageTooLarge, UnknownMessage
from ..media.quality import Hint
from ..recording.store import ChatMessage
from ..roles import Role

__all__ = [
    "Answer",
    "Ask",
    "AskShown",
    "Away",
    "Bye",
    "Capture",
    "CaptureRequest",
    "CaptureStarted",
    "Chat",
    "ChatSent",
    "ChooseSwatch",
    "ClientMessage",
    "ConversationClientMessage",
    "ConversationOpened",
    "Cue",
    "Error",
    "InboxMessage",
    "InboxPosted",
    "InboxRead",
    "Media",
    "MediaState",
    "NotesChanged",
    "Offer",
    "Peer",
    "Read",
    "ReadMark",
    "Record",
    "RecordingState",
    "ServerMessage",
    "ShowSwatch",
    "Stats",
    "StillSaved",
    "SwatchShown",
    "SwatchesChosen",
    "UploadStats",
    "VideoStats",
    "Welcome",
    "chat_sent",
    "conversation_message",
    "encode",
    "history_messages",
    "inbox_message",
    "parse_message",
]

MAX_MESSAGE_BYTES = 64 * 1024


class _Message(msgspec.Struct, tag_field="type", kw_only=True):
    pass


# client -> server


class Offer(_Message, tag="offer"):
    sdp: str


class Bye(_Message, tag="bye"):
    pass


#: What a customer can do to get a better still: the quality gate's hints (docs/stills.md).
Cue = Hint


class Capture(_Message, tag="capture"):
    """Take a still of the customer's hand (the stylist, or the customer's "Send a photo")."""

    #: Protocol v1 let the stylist skip the customer's countdown with ``false``; it is still
    #: accepted, and ignored: no still is taken without the countdown (issue 17).
    countdown: bool = True
    #: A retake: what to fix, shown to the customer before the countdown.
    cue: Annotated[list[Cue], msgspec.Meta(max_length=6)] = msgspec.field(default_factory=list)


class Ask(_Message, tag="ask"):
    """The stylist asks the customer for light or a closer view (a one-tap prompt)."""

    what: Literal["light", "closer"]


_Kbps = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
_Pixels = Annotated[int, msgspec.Meta(ge=0, le=16384)]


class VideoStats(msgspec.Struct, kw_only=True):
    """A page's outgoing video over the last interval, from its own ``getStats()``."""

    width: _Pixels
    height: _Pixels
    fps: Annotated[float, msgspec.Meta(ge=0, le=1000)]
    kbps: _Kbps
    #: Share of packets the server reported lost (RTCP), 0-1.
    loss: Annotated[float, msgspec.Meta(ge=0, le=1)]
    #: Why the browser limits the video now: "none", "cpu", "bandwidth" or "other".
    limit: Literal["none", "cpu", "bandwidth", "other"] = "none"


class Stats(_Message, tag="stats"):
    """The customer's upload: what reaches the server is what the stylist can see."""

    video: VideoStats | None = None
    rtt_ms: Annotated[float, msgspec.Meta(ge=0, le=60_000)] | None = None


MAX_CHAT_CHARS = 2000


class Chat(_Message, tag="chat"):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]
    #: The sender's id for this message: a resend with the same id is not stored twice.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Read(_Message, tag="read"):
    """Everything up to ``seq`` has been read."""

    seq: Annotated[int, msgspec.Meta(ge=0)]


SwatchId = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class ShowSwatch(_Message, tag="swatch"):
    """The stylist shows a palette swatch on the customer's screen (None: clears it)."""

    swatch_id: SwatchId | None


class ChooseSwatch(_Message, tag="choose"):
    """The stylist marks a swatch as the customer's choice (or takes the mark back)."""

    swatch_id: SwatchId
    chosen: bool = True


class Record(_Message, tag="record"):
    """Recording the call (docs/protocol.md, Recording): ask for it, agree or refuse on one's
    own screen, or stop it."""

    action: Literal["ask", "agree", "refuse", "stop"]


ClientMessage = (
    Offer | Bye | Capture | Chat | Read | ShowSwatch | ChooseSwatch | Ask | Stats | Record
)

_COMMON: dict[str, type[_Message]] = {
    "offer": Offer, "bye": Bye, "capture": Capture, "chat": Chat, "read": Read,
    "record": Record,
}  # fmt: skip
#: Which client messages each role may send.
ALLOWED: dict[Role, dict[str, type[_Message]]] = {
    "customer": _COMMON | {"stats": Stats},
    "stylist": _COMMON | {"swatch": ShowSwatch, "choose": ChooseSwatch, "ask": Ask},
}


#: A conversation page with no call (``/ws/conversation``) sends only these.
ConversationClientMessage = Chat | Read
CONVERSATION: dict[str, type[_Message]] = {"chat": Chat, "read": Read}


class _Envelope(msgspec.Struct):
    type: str


def parse_message(
    data: str | bytes,
    role: Role,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    allowed: dict[str, type[_Message]] | None = None,
) -> ClientMessage:
    """``allowed``: the types this connection takes (by default, all a call's ``role`` may
    send)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"Messages are limited to {max_bytes} bytes.")
    try:
        envelope = msgspec.json.decode(raw, type=_Envelope)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"Not a protocol message: {exc}.") from None
    except msgspec.DecodeError:
        raise MalformedMessage("Not valid JSON.") from None
    except RecursionError:
        raise MalformedMessage("The message is nested too deeply.") from None
    kind = (ALLOWED[role] if allowed is None else allowed).get(envelope.type)
    if kind is None:
        raise UnknownMessage(f"A {role} cannot send messages of type {envelope.type!r}.")
    try:
        message = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"Invalid {envelope.type!r} message: {exc}.") from None
    except RecursionError:
        raise MalformedMessage("The message is nested too deeply.") from None
    assert isinstance(
        message,
        Offer | Bye | Capture | Chat | Read | ShowSwatch | ChooseSwatch | Ask | Stats | Record,
    )
    return message


# server -> client


class Welcome(_Message, tag="welcome"):
    role: Role
    consultation: dict[str, Any]
    peer: Literal["present", "absent"]
    ice_servers: list[dict[str, Any]]
    history: list[dict[str, Any]] = msgspec.field(default_factory=list)
    #: Open now, the next opening and the away message (consult.salon.Salon.status).
    salon: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The swatch on the customer's screen now, if any, and the customer's chosen swatches.
    swatch: dict[str, Any] | None = None
    chosen: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Answer(_Message, tag="answer"):
    sdp: str


class Peer(_Message, tag="peer"):
    state: Literal["joined", "left"]


MediaState = Literal["connected", "unreachable"]


class Media(_Message, tag="media"):
    """To both: whether ``role``'s media gets through to the server (docs/protocol.md)."""

    role: Role
    state: MediaState


class Error(_Message, tag="error"):
    code: str
    message: str


class CaptureRequest(_Message, tag="capture-request"):
    """To the customer: count down ``countdown_ms``, take a photo with the camera
    ``photo_in_ms`` after this message (after the server's video still) and upload it to
    ``upload_url``; where the browser cannot take one, offer the device's own camera, whose
    photo is taken at ``upload_url`` with ``&source=native`` for ``window_s`` seconds."""

    capture_id: str
    upload_url: str
    countdown_ms: int = 0
    photo_in_ms: int = 0
    cue: list[str] = msgspec.field(default_factory=list)
    window_s: int = 0


class CaptureStarted(_Message, tag="capture-started"):
    """To the stylist: a capture began; its stills follow after the countdown."""

    capture_id: str
    countdown_ms: int
    by: Role


class AskShown(_Message, tag="ask"):
    """To the customer: the stylist asks for light or a closer view."""

    what: Literal["light", "closer"]


class UploadStats(_Message, tag="upload-stats"):
    """To the stylist: the customer's upload as the customer's page measures it."""

    video: VideoStats | None
    rtt_ms: float | None
    at: str


class StillSaved(_Message, tag="still"):
    still: dict[str, Any]


class ChatSent(_Message, tag="chat", omit_defaults=True):
    """A stored chat message, to both sides (the sender's copy is its acknowledgement)."""

    seq: int
    sender: Role = msgspec.field(name="from")
    text: str
    at: str
    id: str
    #: A photo sent in the chat (as in a ``still`` message).
    still: dict[str, Any] | None = None
    #: A voice message, video clip or file sent in the chat (docs/protocol.md, attachments).
    attachment: dict[str, Any] | None = None


class ReadMark(_Message, tag="read"):
    seq: int
    by: Role


class Away(_Message, tag="away"):
    """To a customer writing while the stylist is away and the salon is closed."""

    message: str
    next_open: str | None


class NotesChanged(_Message, tag="notes"):
    """The summary (to both) and the private notes (to the stylist only) were saved."""

    summary: str
    notes: str | msgspec.UnsetType = msgspec.UNSET


class SwatchShown(_Message, tag="swatch"):
    """To both: the swatch to draw on the customer's screen now (None: none)."""

    swatch: dict[str, Any] | None
    at: str


class SwatchesChosen(_Message, tag="chosen"):
    """To both: the customer's chosen swatches, each ``{"swatch", "at"}``, in order chosen."""

    swatches: list[dict[str, Any]]


class ConversationOpened(_Message, tag="conversation"):
    """The first message on ``/ws/conversation``: the conversation so far, as a call's
    welcome gives it."""

    role: Role
    consultation: dict[str, Any]
    history: list[dict[str, Any]]
    salon: dict[str, Any]


class InboxPosted(_Message, tag="message"):
    """To the staff inbox: a message in one of the conversations."""

    consultation_id: str
    #: The customer's messages the salon has not read there, after this one.
    unread: int
    message: dict[str, Any]
    #: The version ``unread`` was read at: a page keeps the highest (consult/recording/inbox.py).
    version: int


class InboxRead(_Message, tag="read"):
    """To the staff inbox: a side's read mark moved in one of the conversations."""

    consultation_id: str
    seq: int
    by: Role
    unread: int
    #: As ``InboxPosted.version``.
    version: int


InboxMessage = InboxPosted | InboxRead


class RecordingState(_Message, tag="recording"):
    """To both: where recording the call stands. ``asked``: ``by`` asked, ``agreed`` have
    agreed so far; ``on``: being recorded; ``off``: not (``reason`` why it ended, ``by``
    whom, if anyone)."""

    state: Literal["off", "asked", "on"]
    by: Role | None = None
    agreed: list[Role] = msgspec.field(default_factory=list)
    reason: Literal["refused", "stopped", "left", "storage-full", "failed"] | None = None


ServerMessage = (
    Welcome
    | ConversationOpened
    | InboxPosted
    | InboxRead
    | Answer
    | Peer
    | Media
    | Error
    | CaptureRequest
    | StillSaved
    | ChatSent
    | ReadMark
    | NotesChanged
    | Away
    | SwatchShown
    | SwatchesChosen
    | CaptureStarted
    | AskShown
    | UploadStats
    | RecordingState
)


def encode(message: ServerMessage) -> str:
    return msgspec.json.encode(message).decode()


def as_dict(message: ServerMessage) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(message)
    return result


def chat_sent(
    message: ChatMessage,
    still: dict[str, Any] | None = None,
    attachment: dict[str, Any] | None = None,
) -> ChatSent:
    """A stored message as the pages get it; ``still``/``attachment`` as their JSON."""
    return ChatSent(
        seq=message.seq,
        sender=message.sender,
        text=message.text,
        at=message.created_at.isoformat(),
        id=message.client_id,
        still=still,
        attachment=attachment,
    )


def history_messages(history: History) -> list[dict[str, Any]]:
    """A conversation so far as a welcome carries it: every chat message, then the marks."""
    messages = [as_dict(chat_sent(*message)) for message in history.messages]
    return messages + [as_dict(ReadMark(seq=seq, by=role)) for role, seq in history.marks.items()]


def conversation_message(event: Posted | ReadMoved | AwayNoticed) -> ServerMessage:
    """A conversation's event as a side's page gets it (on the call's websocket or its own)."""
    match event:
        case Posted(message=message, still=still, attachment=attachment):
            return chat_sent(message, still, attachment)
        case ReadMoved(seq=seq, by=by):
            return ReadMark(seq=seq, by=by)
        case AwayNoticed(message=message, next_open=next_open):
            return Away(message=message, next_open=next_open)


def inbox_message(event: Posted | ReadMoved) -> InboxMessage:
    match event:
        case Posted(message=message, still=still, attachment=attachment, unread=unread):
            return InboxPosted(
                consultation_id=message.consultation_id,
                unread=unread,
                message=as_dict(chat_sent(message, still, attachment)),
                version=event.version,
            )
        case ReadMoved(consultation_id=consultation_id, seq=seq, by=by, unread=unread):
            return InboxRead(
                consultation_id=consultation_id, seq=seq, by=by, unread=unread,
                version=event.version,
            )  # fmt: skip
