"""The websocket adapters: bytes in and out, everything else in the hub (calls) and the
conversation service (chat, read marks, away notices).

``/ws`` is a call (protocol v1); ``/ws/conversation`` a side's conversation with no call;
``/ws/inbox`` the staff inbox's live updates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..appkeys import (
    ACCOUNTS,
    AUTH_FAILURES,
    CONVERSATIONS,
    HUB,
    ICE_SERVERS,
    METRICS,
    NODE,
    RELAYS,
    SETTINGS,
    STORE,
)
from ..auth import link_reach, require_staff
from ..conversation import Conversations, Event, History, LinksRevoked, Posted, ReadMoved
from ..errors import (
    CallMoved,
    ConsentRequired,
    ConsultError,
    Disconnect,
    Forbidden,
    InvalidToken,
    NotFound,
    OwnerUnreachable,
    RateLimited,
    Revoked,
    ServerBusy,
    StorageFailed,
    TooManyAttempts,
)
from ..nodes import NodeCall
from ..ratelimit import TokenBucket
from ..record import consultation_json, earlier_json
from ..recording.store import Grant
from ..roles import partner_of
from .hub import There
from .messages import (
    CONVERSATION,
    Answer,
    Ask,
    Bye,
    Capture,
    Chat,
    ChooseSwatch,
    ClientMessage,
    ConversationOpened,
    Error,
    Offer,
    Read,
    Record,
    ShowSwatch,
    Stats,
    Welcome,
    conversation_message,
    encode,
    history_messages,
    inbox_message,
    parse_message,
)
from .participant import Participant
from .ws_relay import Refused

__all__ = ["conversation_websocket", "inbox_websocket", "websocket"]

logger = logging.getLogger(__name__)


async def _open(request: web.Request) -> web.WebSocketResponse:
    """The websocket; closed with GOING_AWAY if the server is shutting down."""
    settings = request.app[SETTINGS]
    # aiohttp closes the connection above its own limit; between our limit and that one a
    # client gets a "too-large" error and stays connected.
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat,
        max_msg_size=settings.max_message_bytes * 4,
        timeout=2.0,
    )
    await ws.prepare(request)
    if request.app[HUB].closing:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutting down")
    return ws


async def _grant(
    request: web.Request, ws: web.WebSocketResponse, client: str | None = None
) -> Grant | None:
    """What the link token opens; None once an invalid token was told and the socket closed.
    ``client``: the client's address for the limits (default: the request's)."""
    store = request.app[STORE]
    limiter = request.app[AUTH_FAILURES]
    client = client or request.remote or "unknown"
    try:
        if await limiter.retry_after(client) > 0:
            raise TooManyAttempts()
        grant = await store.resolve_token(request.query.get("token", ""))
        await store.get_consultation(grant.consultation_id)
        await link_reach(request, grant)
    except ConsultError as exc:
        # A database away is not the client's failure: it is told so, and may try again; a
        # stylist refused another's consultation is told so.
        passed_on = InvalidToken | TooManyAttempts | StorageFailed | Forbidden
        error = exc if isinstance(exc, passed_on) else InvalidToken()
        if isinstance(error, InvalidToken):
            await limiter.failed(client)
        request.app[METRICS].error(error.code, "ws")
        await ws.send_str(encode(Error(code=error.code, message=error.message)))
        await ws.close(code=error.close_code, message=error.code.encode())
        return None
    return grant


async def _connect(
    request: web.Request, client: str | None = None
) -> tuple[web.WebSocketResponse, Participant | None]:
    """The websocket and the side its link token opens (None: refused, and closed)."""
    ws = await _open(request)
    grant = None if ws.closed else await _grant(request, ws, client)
    if grant is None:
        return ws, None
    metrics = request.app[METRICS]
    return ws, Participant(
        ws, grant.consultation_id, grant.role, on_error=lambda code: metrics.error(code, "ws")
    )


async def _serve(
    request: web.Request,
    participant: Participant,
    handle: Callable[[ClientMessage], Awaitable[None]],
    allowed: dict[str, type[Any]] | None = None,
) -> None:
    """Read the client's messages, parsed and rate-limited, and ``handle`` each; an error is
    told to the client (a ``Disconnect`` closes the connection) and the next is read."""
    settings = request.app[SETTINGS]
    bucket = TokenBucket(settings.message_rate, settings.message_burst)
    async for msg in participant.ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            if not bucket.take():
                raise RateLimited()
            await handle(
                parse_message(
                    msg.data,
                    participant.role,
                    max_bytes=settings.max_message_bytes,
                    allowed=allowed,
                )
            )
        except Disconnect as exc:
            await participant.disconnect(exc)
        except ConsultError as exc:
            await participant.send_error(exc)
        except Exception:
            # A bug handling one message must not end the call.
            logger.exception("%r: unhandled error handling a %s message", participant, msg.type)
            await participant.send_error(ConsultError("Something went wrong on the server."))


async def _converse(
    conversations: Conversations, participant: Participant, message: Chat | Read
) -> None:
    """A side's chat or read mark, to the conversation; a resend is acknowledged alone."""
    match message:
        case Chat(text=text, id=client_id):
            posted = await conversations.post(
                participant.consultation_id, participant.role, client_id, text
            )
            if not posted.new:
                await participant.send(conversation_message(posted))
        case Read(seq=seq):
            await conversations.read(participant.consultation_id, participant.role, seq)


def _forward(participant: Participant, history: History) -> Callable[[Event], Awaitable[None]]:
    async def send(event: Event) -> None:
        if isinstance(event, LinksRevoked):
            await participant.disconnect(Revoked())  # once, for a call's member too
            return
        # Subscribed before the history was read: what it holds already is not sent twice.
        if isinstance(event, Posted) and event.message.seq <= history.last_seq:
            return
        await participant.send(conversation_message(event))

    return send


def _relayed_from(request: web.Request) -> NodeCall | None:
    """The node that relays this ``/ws`` (None: a client's own); ``Unauthorized`` if it says
    it comes from a node but is not signed as one."""
    return request.app[NODE].verify(request.headers, "GET", request.raw_path)


async def _to_owner(
    request: web.Request, ws: web.WebSocketResponse, participant: Participant, client: str
) -> bool:
    """Send the participant where its call lives: True if it was relayed to another node (and
    that has ended), False if the call is this node's. Takes the call over from a node that
    refuses connections (it died); ``OwnerUnreachable`` if the owner does not answer."""
    hub, relays = request.app[HUB], request.app[RELAYS]
    consultation_id = participant.consultation_id
    placement = await hub.place(consultation_id)
    refused: set[str] = set()
    while isinstance(placement, There):
        outcome = await relays.relay(ws, request, placement.node, client)
        match outcome:
            case None:
                return True
            case Refused(node_id=node_id) if node_id not in refused:
                logger.warning("%s: node %s refuses connections: taking the call over",
                               consultation_id, node_id)  # fmt: skip
                refused.add(node_id)
                placement = await hub.place(consultation_id, unreachable=refused)
            case _:
                logger.warning("%s: the call's node cannot be reached: %s", consultation_id,
                               outcome)  # fmt: skip
                raise OwnerUnreachable()
    return False


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """A call: ``/ws?token=`` (protocol v1), joined here if the call is this node's (or this
    node takes it), else relayed to the node that owns it (docs/protocol.md, Several nodes)."""
    store = request.app[STORE]
    hub = request.app[HUB]
    conversations = request.app[CONVERSATIONS]
    # A request that claims to come from a node but is not signed as one: 401 (JSON).
    relayed = _relayed_from(request)
    client = (relayed.client if relayed is not None else None) or request.remote or "unknown"
    ws, participant = await _connect(request, client)
    if participant is None:
        return ws
    grant = Grant(participant.consultation_id, participant.role)
    if (
        grant.role == "customer"
        and request.app[SETTINGS].require_consent
        and await store.consents.current(grant.consultation_id) is None
    ):
        # Where the salon requires it, the customer agrees on the page (over HTTP) first.
        await participant.disconnect(ConsentRequired())
        return ws
    try:
        # A participant relayed here by another node is never sent on: that node chose this
        # one as the call's owner (or as the node to take it).
        if relayed is not None:
            await hub.place(grant.consultation_id, relayed=True)
        elif await _to_owner(request, ws, participant, client):
            return ws
    except (OwnerUnreachable, StorageFailed) as exc:
        request.app[METRICS].error(exc.code, "ws")
        await participant.disconnect(exc)
        return ws
    async with conversations.subscribe(grant.consultation_id, grant.role) as subscription:
        try:
            call = await hub.join(participant)
        except (ServerBusy, CallMoved, OwnerUnreachable, StorageFailed) as exc:
            await participant.disconnect(exc)
            return ws
        try:
            # Read after joining: a change announced before the join is in what is read now,
            # and one announced after it is held for this participant until the welcome is out.
            consultation = await store.get_consultation(grant.consultation_id)
            board = await store.swatch_log.board(grant.consultation_id)
            history = await conversations.history(grant.consultation_id, subscription)
            await participant.welcome(
                Welcome(
                    role=grant.role,
                    consultation=consultation_json(consultation, role=grant.role)
                    | {"earlier": await earlier_json(store, consultation)},
                    peer="present" if call.room.member(partner_of(grant.role)) else "absent",
                    ice_servers=[s.to_browser() for s in request.app[ICE_SERVERS]],
                    history=history_messages(history),
                    salon=(await store.get_salon()).status(datetime.now(UTC)),
                    swatch=board.current,
                    chosen=board.chosen,
                )
            )

            async def handle(message: ClientMessage) -> None:
                match message:
                    case Offer(sdp=sdp):
                        answer = await hub.offer(participant, sdp)
                        await participant.send(Answer(sdp=answer))
                    case Bye():
                        await participant.disconnect()
                    case Capture(cue=cue):
                        await hub.capture(participant, cue=cue)
                    case Ask(what=what):
                        await hub.ask(participant, what)
                    case Stats():
                        await hub.upload_stats(participant, message)
                    case Chat() | Read():
                        await _converse(conversations, participant, message)
                    case ShowSwatch(swatch_id=swatch_id):
                        await hub.show_swatch(participant, swatch_id)
                    case ChooseSwatch(swatch_id=swatch_id, chosen=chosen):
                        await hub.choose_swatch(participant, swatch_id, chosen)
                    case Record(action=action):
                        await hub.record(participant, action)

            async with subscription.forwarding(_forward(participant, history)):
                await _serve(request, participant, handle)
        finally:
            await hub.leave(participant)
    return ws


async def conversation_websocket(request: web.Request) -> web.WebSocketResponse:
    """A conversation with no call: ``/ws/conversation?token=`` (docs/protocol.md)."""
    store = request.app[STORE]
    conversations = request.app[CONVERSATIONS]
    ws, side = await _connect(request)
    if side is None:
        return ws
    grant = Grant(side.consultation_id, side.role)
    async with conversations.subscribe(grant.consultation_id, grant.role) as subscription:
        consultation = await store.get_consultation(grant.consultation_id)
        history = await conversations.history(grant.consultation_id, subscription)
        await side.welcome(
            ConversationOpened(
                role=grant.role,
                consultation=consultation_json(consultation, role=grant.role)
                | {"earlier": await earlier_json(store, consultation)},
                history=history_messages(history),
                salon=(await store.get_salon()).status(datetime.now(UTC)),
            )
        )

        async def handle(message: ClientMessage) -> None:
            if isinstance(message, Chat | Read):
                await _converse(conversations, side, message)

        async def ended() -> None:
            await side.disconnect(code=WSCloseCode.GOING_AWAY)

        async with subscription.forwarding(_forward(side, history), ended):
            await _serve(request, side, handle, CONVERSATION)
    return ws


async def inbox_websocket(request: web.Request) -> web.WebSocketResponse:
    """The staff inbox's live updates: ``/ws/inbox``, signed-in staff (docs/protocol.md); a
    stylist's account hears only of their own and unassigned conversations."""
    caller = await require_staff(request)
    conversations = request.app[CONVERSATIONS]
    accounts = request.app[ACCOUNTS]
    ws = await _open(request)
    if ws.closed:
        return ws

    async def send(event: Event) -> None:
        if not isinstance(event, Posted | ReadMoved):
            return
        # Assignment changes while the inbox is open: asked per event, not remembered.
        if not caller.owner:
            try:
                assigned = await accounts.assigned_to(event.consultation_id)
            except NotFound:
                return  # deleted since
            if not caller.may_reach(assigned):
                return
        await ws.send_str(encode(inbox_message(event)))

    async def ended() -> None:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutting down")

    async with (
        conversations.subscribe(None, "staff") as subscription,
        subscription.forwarding(send, ended),
    ):
        # The inbox only listens: what staff do goes over HTTP (docs/protocol.md).
        async for _ in ws:
            pass
    return ws
