"""The websocket adapter: bytes in and out, everything else in the hub and the room."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web

from ..appkeys import AUTH_FAILURES, HUB, ICE_SERVERS, METRICS, SETTINGS, STORE
from ..errors import ConsultError, Disconnect, InvalidToken, RateLimited, TooManyAttempts
from ..ratelimit import TokenBucket
from ..record import consultation_json, earlier_json
from ..roles import partner_of
from .messages import (
    Answer,
    Ask,
    Bye,
    Capture,
    Chat,
    ChooseSwatch,
    Error,
    Offer,
    Read,
    Record,
    ShowSwatch,
    Stats,
    Welcome,
    encode,
    parse_message,
)
from .participant import Participant

__all__ = ["websocket"]

logger = logging.getLogger(__name__)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    store = request.app[STORE]
    hub = request.app[HUB]
    # aiohttp closes the connection above its own limit; between our limit and that one a
    # client gets a "too-large" error and stays connected.
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat,
        max_msg_size=settings.max_message_bytes * 4,
        timeout=2.0,
    )
    await ws.prepare(request)
    if hub.closing:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"shutting down")
        return ws
    limiter = request.app[AUTH_FAILURES]
    client = request.remote or "unknown"
    try:
        if limiter.retry_after(client) > 0:
            raise TooManyAttempts()
        grant = await store.resolve_token(request.query.get("token", ""))
        consultation = await store.get_consultation(grant.consultation_id)
    except ConsultError as exc:
        error = exc if isinstance(exc, InvalidToken | TooManyAttempts) else InvalidToken()
        if isinstance(error, InvalidToken):
            limiter.failed(client)
        request.app[METRICS].error(error.code, "ws")
        await ws.send_str(encode(Error(code=error.code, message=error.message)))
        await ws.close(code=error.close_code, message=error.code.encode())
        return ws

    metrics = request.app[METRICS]
    participant = Participant(
        ws, grant.consultation_id, grant.role, on_error=lambda code: metrics.error(code, "ws")
    )
    call = await hub.join(participant)
    try:
        # Read after joining: a change announced before the join is in what is read now, and
        # one announced after it is held for this participant until the welcome is out.
        consultation = await store.get_consultation(grant.consultation_id)
        board = await store.swatch_log.board(grant.consultation_id)
        await participant.welcome(
            Welcome(
                role=grant.role,
                consultation=consultation_json(consultation, role=grant.role)
                | {"earlier": await earlier_json(store, consultation)},
                peer="present" if call.room.member(partner_of(grant.role)) else "absent",
                ice_servers=[s.to_browser() for s in request.app[ICE_SERVERS]],
                history=await hub.history(grant.consultation_id),
                salon=(await store.get_salon()).status(datetime.now(UTC)),
                swatch=board.current,
                chosen=board.chosen,
            )
        )
        bucket = TokenBucket(settings.message_rate, settings.message_burst)
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                if not bucket.take():
                    raise RateLimited()
                message = parse_message(msg.data, grant.role, max_bytes=settings.max_message_bytes)
                match message:
                    case Offer(sdp=sdp):
                        answer = await hub.offer(participant, sdp)
                        await participant.send(Answer(sdp=answer))
                    case Bye():
                        await participant.disconnect()
                    case Capture(countdown=countdown, cue=cue):
                        await hub.capture(participant, countdown=countdown, cue=cue)
                    case Ask(what=what):
                        await hub.ask(participant, what)
                    case Stats():
                        await hub.upload_stats(participant, message)
                    case Chat(text=text, id=client_id):
                        await hub.chat(participant, client_id, text)
                    case Read(seq=seq):
                        await hub.read(participant, seq)
                    case ShowSwatch(swatch_id=swatch_id):
                        await hub.show_swatch(participant, swatch_id)
                    case ChooseSwatch(swatch_id=swatch_id, chosen=chosen):
                        await hub.choose_swatch(participant, swatch_id, chosen)
                    case Record(action=action):
                        await hub.record(participant, action)
            except Disconnect as exc:
                await participant.disconnect(exc)
            except ConsultError as exc:
                await participant.send_error(exc)
            except Exception:
                # A bug handling one message must not end the call.
                logger.exception("%r: unhandled error handling a %s message", participant, msg.type)
                await participant.send_error(ConsultError("Something went wrong on the server."))
    finally:
        await hub.leave(participant)
    return ws
