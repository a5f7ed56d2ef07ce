"""The live calls of one server: each consultation's room, its participants and its media.

The hub applies the room's events (pure decisions) as I/O: messages to participants,
disconnections, media wiring and the consultation's status in the store. It holds calls only
while somebody is in them. The chat is not the call's: it lives in ``consult.conversation``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import time
from collections.abc import Collection, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from aiohttp import WSCloseCode

from .. import errors
from ..admission import Admission, Busy, Sample, admit_limit
from ..config import Settings
from ..cpuquota import cores_allowed
from ..media.forward import Forwarder
from ..media.ice import server_configuration
from ..media.peer import ServerPeer
from ..media.recording import CallRecording
from ..media.sdp import check_offer
from ..media.stills import VIDEO_STILL_LEAD, Stills, best_of_burst, still_json
from ..metrics import Metrics
from ..nodes import Node
from ..ownership import OWNER_LEASE, OWNER_RENEW, Go, Keep, Take, decide, elsewhere
from ..recording.media_writer import Written
from ..recording.nodes import NodeInfo
from ..recording.palette import SwatchAction, SwatchEvent
from ..recording.recordings import Finished, Recording, RecordingFiles
from ..recording.store import Consultation, Store
from ..roles import ROLES, Role, partner_of
from .consent import Asked, Consent, ConsentEvent, Ended, Reason, Started
from .messages import (
    AskShown,
    CaptureRequest,
    CaptureStarted,
    Error,
    Media,
    MediaState,
    NotesChanged,
    Peer,
    RecordingState,
    ServerMessage,
    Stats,
    StillSaved,
    SwatchesChosen,
    SwatchShown,
    UploadStats,
    as_dict,
)
from .node_actions import FORWARDED, NodeAction, decode_server_message, encode_node_action
from .participant import Participant
from .room import Event, PeerJoined, PeerLeft, Replaced, Room, StateChanged

__all__ = ["Call", "Here", "Hub", "There"]

logger = logging.getLogger(__name__)

#: A stopped recording's row is retried this often, this far apart, while the database is
#: away (a minute: longer than an outage the service rides out, docs/operations.md).
ROW_RETRIES = 30
ROW_RETRY_S = 2.0


#: Seconds ``end`` waits for a call's members to leave.
END_WAIT = 10.0


class Here:
    """The call is this node's: its participants join it here."""


@dataclass(frozen=True)
class There:
    """The call is another node's (or goes to another node): its participants are relayed."""

    node: NodeInfo


class Call:
    def __init__(self, consultation_id: str, epoch: int) -> None:
        self.consultation_id = consultation_id
        #: The epoch of this node's ownership of the call (consult/ownership.py).
        self.epoch = epoch
        #: Lost to another node, or sent away by a drain: its members are being disconnected
        #: (``call-moved``) and nobody joins it any more.
        self.moved = False
        #: Its last member left: its ownership is being released; a participant arriving
        #: now waits for ``over`` and starts the next call.
        self.ending = False
        self.room = Room(consultation_id)
        self.forwarder = Forwarder(consultation_id)
        self.consent = Consent(consultation_id)
        #: The recording being written, while both have agreed.
        self.recording: CallRecording | None = None
        #: Set once the last member has left (its recording settled).
        self.over = asyncio.Event()

    def members(self) -> list[Participant]:
        members = (self.room.member("customer"), self.room.member("stylist"))
        return [m for m in members if isinstance(m, Participant)]


class Hub:
    def __init__(
        self,
        store: Store,
        stills: Stills,
        settings: Settings,
        metrics: Metrics,
        recording_files: RecordingFiles,
        node: Node,
    ) -> None:
        self._store = store
        self._node = node
        #: Calls this node has just taken (consultation id -> epoch) for the participant
        #: about to join them.
        self._claims: dict[str, int] = {}
        self._recording_files = recording_files
        self.metrics = metrics
        self._stills = stills
        self._settings = settings
        self._calls: dict[str, Call] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.admission = Admission(
            cpu_limit=admit_limit(
                settings.admit_cpu,
                cores_allowed(),
                1 if settings.worker is None else settings.worker_count,
            ),
            max_calls=settings.max_calls,
        )

    @property
    def closing(self) -> bool:
        return self._closing

    def calls(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def stats(self) -> dict[str, int]:
        """What is live: calls, participants, server peers and the tracks they read."""
        members = [m for call in self._calls.values() for m in call.members()]
        peers = [m.peer for m in members if m.peer is not None]
        return {
            "calls": len(self._calls),
            "participants": len(members),
            "peers": len(peers),
            "inlets": sum(len(p.inlets) for p in peers),
        }

    def call(self, consultation_id: str) -> Call | None:
        return self._calls.get(consultation_id)

    async def hold_calls(self) -> None:
        """Renew this node's calls in the store, for as long as it runs: their ownership and
        their live status, one lease (a node that stops renewing, because it died, leaves its
        calls to the others within ``OWNER_LEASE``). A call another node has taken meanwhile
        is dropped here at once: its members reconnect, and reach it there."""
        while True:
            await asyncio.sleep(OWNER_RENEW.total_seconds())
            calls = [c for c in self._calls.values() if not (c.moved or c.ending)]
            epochs = {c.consultation_id: c.epoch for c in calls}
            live = [c.consultation_id for c in calls if c.room.state == "live"]
            try:
                lost = await self._store.hold_calls(epochs, live)
            except errors.StorageFailed:
                logger.warning("calls not renewed (database unavailable)")
                continue
            for consultation_id in lost:
                call = self._calls.get(consultation_id)
                if call is not None and call.epoch == epochs[consultation_id]:
                    logger.warning("%s: taken over by another node: dropped here", consultation_id)
                    self._spawn(self._move(call))

    async def place(
        self, consultation_id: str, *, relayed: bool = False, unreachable: Collection[str] = ()
    ) -> Here | There:
        """Where a participant of ``consultation_id`` goes: ``Here`` (the call is this node's,
        or this node takes it now) or ``There`` (another node's: relay the participant).
        ``relayed``: the participant comes from another node, which sent it here: it is never
        sent on (``owner-unreachable`` if a third node holds the call now). ``unreachable``:
        nodes that refused a connection just now (dead even if their heartbeat holds)."""
        call = await self._current(consultation_id)
        if call is not None and not call.moved:
            return Here()
        me = self._node.node_id
        for _ in range(3):
            owner = await self._store.call_owners.get(consultation_id)
            live = await self._node.live()
            alive = {n.node_id: n for n in live}
            now = datetime.now(UTC)
            match decide(owner, me, now, alive, unreachable):
                case Keep(epoch=epoch):
                    self._claims[consultation_id] = epoch
                    return Here()
                case Go(node_id=node_id):
                    if relayed:
                        raise errors.OwnerUnreachable()
                    return There(alive[node_id])
                case Take(epoch=epoch, expected=expected):
                    # A draining node takes no new call: it goes to another node, if any.
                    target = elsewhere(live, me, unreachable) if self._node.draining else None
                    if target is not None and not relayed:
                        return There(alive[target])
                    owners = self._store.call_owners
                    if await owners.take(consultation_id, me, epoch, expected, now, OWNER_LEASE):
                        logger.info("%s: taken by this node (epoch %d)", consultation_id, epoch)
                        self._claims[consultation_id] = epoch
                        return Here()
        raise errors.OwnerUnreachable()  # the row changed under us each time: try again later

    async def watch_load(self, interval: float = 1.0) -> None:
        """Tell admission, for as long as the server runs, what the event loop costs and how
        late it wakes: from the loop's own thread, whose CPU time is every call's packets."""
        while True:
            asked = time.monotonic()
            await asyncio.sleep(interval)
            now = time.monotonic()
            lag = max(0.0, now - asked - interval)
            self.admission.observe(Sample(now, time.thread_time(), lag, len(self._calls)))

    async def join(self, participant: Participant) -> Call:
        """Put ``participant`` in its consultation's call; a new call only if this worker has
        room for it (``ServerBusy`` otherwise: a call in progress always takes its own back)."""
        consultation_id = participant.consultation_id
        epoch = self._claims.pop(consultation_id, None)
        call = self._calls.get(consultation_id)
        if call is not None and call.ending:
            call = await self._current(consultation_id)
            epoch = None  # what was claimed was the ended call's
        if call is not None and call.moved:
            raise errors.CallMoved()
        if call is None:
            if epoch is None:
                # Not placed here first (or placed by a participant that joined since).
                if isinstance(await self.place(consultation_id), There):
                    raise errors.CallMoved()
                epoch = self._claims.pop(consultation_id)
            decision = self.admission.decide(time.monotonic(), len(self._calls))
            if isinstance(decision, Busy):
                await self._release(consultation_id, epoch)
                logger.warning(
                    "%s: refused a new call (%s; %d calls, loop at %s of a core)",
                    participant.consultation_id,
                    decision.reason,
                    len(self._calls),
                    "?" if decision.usage is None else f"{decision.usage:.0%}",
                )
                raise errors.ServerBusy()
            call = self._calls[consultation_id] = Call(consultation_id, epoch)
        logger.info("%s: %s joined", participant.consultation_id, participant.role)
        await self._apply(call, call.room.join(participant.role, participant))
        partner = call.room.member(partner_of(participant.role))
        if isinstance(partner, Participant) and partner.media is not None:
            await participant.send(Media(role=partner.role, state=partner.media))
        return call

    async def leave(self, participant: Participant) -> None:
        """Take ``participant`` out of its call, to the end even if the caller is cancelled.

        A websocket handler leaves from its ``finally``, which aiohttp may cancel once the
        connection is lost; the hub owns the rest so the partner is told and the status saved.
        """
        await asyncio.shield(self._spawn(self._leave(participant)))

    async def _leave(self, participant: Participant) -> None:
        call = self._calls.get(participant.consultation_id)
        if call is not None:
            try:
                await self._apply_consent(call, call.consent.leave(participant.role))
            except Exception:
                # The recording's end must not keep a participant in the call.
                logger.exception("%s: stopping the recording failed", participant.consultation_id)
        await participant.close_peer()
        logger.info("%s: %s left", participant.consultation_id, participant.role)
        if call is None:
            return
        await self._apply(call, call.room.leave(participant))
        if call.room.empty and not call.ending and self._calls.get(call.consultation_id) is call:
            # Released while still listed (``ending``): a participant arriving meanwhile
            # waits, and then finds the call nobody's rather than a lease about to go.
            call.ending = True
            try:
                if not call.moved:
                    await self._release(call.consultation_id, call.epoch)
            finally:
                del self._calls[call.consultation_id]
                call.over.set()

    async def _current(self, consultation_id: str) -> Call | None:
        """The consultation's call here, once any call of it that is ending has ended."""
        call = self._calls.get(consultation_id)
        while call is not None and call.ending:
            await call.over.wait()
            call = self._calls.get(consultation_id)
        return call

    async def _release(self, consultation_id: str, epoch: int) -> None:
        """The call ended here: nobody's, so the next participant's node takes it at once."""
        try:
            await self._store.call_owners.release(consultation_id, self._node.node_id, epoch)
        except errors.StorageFailed:
            logger.warning("%s: ownership not released (it lapses by itself)", consultation_id)

    async def _move(self, call: Call) -> None:
        """Send the call's members away (``call-moved``): they reconnect, and reach the call
        on the node that holds it now, or that takes it."""
        call.moved = True
        await asyncio.gather(
            *(m.disconnect(errors.CallMoved()) for m in call.members()), return_exceptions=True
        )

    async def drain(self, grace: float) -> None:
        """SIGTERM: no new calls here (the node is draining: ``place`` sends them to other
        nodes); the calls in progress go on for ``grace`` seconds, then move to another node:
        released first, so the members' reconnections take them there at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._calls and (left := deadline - loop.time()) > 0:
            overs = [asyncio.ensure_future(c.over.wait()) for c in self.calls()]
            await asyncio.wait(overs, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for waiting in overs:
                waiting.cancel()
        calls = [c for c in self.calls() if not c.moved]
        if calls:
            logger.info("draining: %d calls move to other nodes", len(calls))
        for call in calls:
            call.moved = True
            await self._release(call.consultation_id, call.epoch)
        await asyncio.gather(*(self._move(call) for call in calls))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(call.over.wait() for call in calls)), END_WAIT)

    async def offer(self, participant: Participant, offer: str) -> str:
        """Answer a participant's offer with a new server peer, replacing any previous one."""
        call = self._calls.get(participant.consultation_id)
        if call is None or call.room.member(participant.role) is not participant:
            raise errors.Replaced()
        check_offer(offer, max_bytes=self._settings.max_sdp_bytes)
        peer = ServerPeer(
            participant.role,
            label=participant.consultation_id,
            configuration=server_configuration(),
            media_addresses=self._settings.media_addresses,
            bitrates=self._settings.bitrates,
            max_sdp_bytes=self._settings.max_sdp_bytes,
            forwarding=self._settings.forwarding,
        )
        call.forwarder.steer(peer)
        # The new peer answers first: an offer aiortc refuses leaves the media as it was.
        try:
            answer = await peer.answer(offer)
        except BaseException:
            await peer.close()
            raise
        if call.room.member(participant.role) is not participant or not participant.connected:
            await peer.close()  # left or replaced while we answered
            raise errors.Replaced()
        previous, participant.peer = participant.peer, peer

        @peer.on("statechange")
        def on_state(state: str) -> None:
            if participant.peer is peer and state == "connected":
                self._spawn(self._set_media(participant, "connected"))

        def on_closed() -> None:
            self.metrics.peer_closed(peer)
            # Closed under us (failed, or the browser closed it) rather than replaced by us.
            if participant.peer is not peer:
                return
            if peer.was_connected:
                self._spawn(self._expect_new_offer(participant, peer))
            else:
                # Reconnecting the websocket would not get media through either: the page
                # keeps its chat and offers again when it can (docs/protocol.md, media).
                participant.peer = None
                self._spawn(self._set_media(participant, "unreachable"))

        # Nothing was awaited since the answer was made: the peer cannot have closed yet.
        peer.once("closed", on_closed)
        call.forwarder.add(peer)
        # aioice gives up on a network that drops UDP only once its checks time out (over
        # 30 s): both sides are told after media_timeout instead, and the peer keeps trying.
        deadline = asyncio.get_running_loop().call_later(
            self._settings.media_timeout, self._media_deadline, participant, peer
        )
        peer.once("closed", deadline.cancel)
        if previous is not None:
            await previous.close()
        return answer

    def _media_deadline(self, participant: Participant, peer: ServerPeer) -> None:
        if participant.peer is peer and not peer.was_connected:
            self._spawn(self._set_media(participant, "unreachable"))

    async def _set_media(self, participant: Participant, state: MediaState) -> None:
        """Tell both sides whether ``participant``'s media gets through; repeats are skipped."""
        if state == participant.media or not participant.connected:
            return
        participant.media = state
        if state == "unreachable":
            logger.warning(
                "%s: %s's media does not get through to the server (a network that blocks"
                " UDP needs a TURN server over TCP or TLS: docs/operations.md)",
                participant.consultation_id,
                participant.role,
            )
        call = self._calls.get(participant.consultation_id)
        if call is not None and call.room.member(participant.role) is participant:
            await self.broadcast(
                participant.consultation_id, Media(role=participant.role, state=state)
            )

    async def _expect_new_offer(self, participant: Participant, peer: ServerPeer) -> None:
        """A page whose peer connection ended re-offers at once; one that does not has lost
        its media: disconnect it (``media-failed``), so its partner is told it left and the
        page reconnects from scratch."""
        await asyncio.sleep(self._settings.reoffer_grace)
        if participant.peer is peer and participant.connected:
            await participant.disconnect(errors.MediaFailed())

    async def capture(self, requester: Participant, *, cue: Sequence[str] = ()) -> str:
        """Start a capture: after a countdown for the customer to place the hand, the
        customer's page takes a camera photo, and the server the best frame of the customer's
        video. Each still is announced to both sides as it is saved. ``cue``: what to fix, for
        a retake.

        The countdown is never skipped (issue 17): no still is taken before the customer's
        page has counted down, as ``capture-request`` tells it to, for ``capture_countdown``."""
        customer = self._member(requester.consultation_id, "customer")
        if customer is None or customer.peer is None or "video" not in customer.peer.inlets:
            raise errors.NoCustomer()
        started = time.monotonic()
        delay = self._settings.capture_countdown
        # The video's burst ends as the countdown does; the photo follows it (VIDEO_STILL_LEAD).
        burst_at = max(0.0, delay - VIDEO_STILL_LEAD)
        photo_at = max(delay, VIDEO_STILL_LEAD)
        capture = await self._store.create_capture(requester.consultation_id, requester.role)
        await customer.send(
            CaptureRequest(
                capture_id=capture.id,
                upload_url=f"/api/consultations/{capture.consultation_id}/stills"
                f"?capture={capture.id}",
                countdown_ms=round(delay * 1000),
                photo_in_ms=round(photo_at * 1000),
                cue=list(cue),
                window_s=round(self._settings.native_photo_window),
            )
        )
        stylist = self._member(requester.consultation_id, "stylist")
        if stylist is not None:
            await stylist.send(
                CaptureStarted(
                    capture_id=capture.id, countdown_ms=round(delay * 1000), by=requester.role
                )
            )
        self._spawn(
            self._video_still(customer.peer, capture.consultation_id, capture.id, started, burst_at)
        )
        return capture.id

    async def _video_still(
        self, peer: ServerPeer, consultation_id: str, capture_id: str, started: float, delay: float
    ) -> None:
        # The customer's page counts down meanwhile: the burst ends as the countdown does.
        await asyncio.sleep(delay)
        await peer.request_keyframe()
        inlet = peer.inlets.get("video")
        frame = (
            await best_of_burst(inlet, ask_keyframe=peer.request_keyframe)
            if inlet is not None
            else None
        )
        if frame is None:
            logger.warning(
                "%s: capture %s: no video to take a still from", consultation_id, capture_id
            )
            self.metrics.capture_failed("video")
            self.metrics.error("no-customer", "ws")
            await self.broadcast(
                consultation_id, Error(code="no-customer", message=errors.NoCustomer().message)
            )
            return
        try:
            still = await self._stills.save_video(consultation_id, capture_id, frame)
        except Exception as exc:
            error = exc if isinstance(exc, errors.ConsultError) else errors.ConsultError()
            logger.exception("%s: capture %s: video still failed", consultation_id, capture_id)
            self.metrics.capture_failed("video")
            self.metrics.error(error.code, "ws")
            await self.broadcast(consultation_id, Error(code=error.code, message=error.message))
            return
        self.metrics.capture_saved("video", time.monotonic() - started - delay)
        await self.broadcast(consultation_id, StillSaved(still=still_json(still)))

    async def ask(self, stylist: Participant, what: Literal["light", "closer"]) -> None:
        """The stylist asks for light or a closer view: a prompt on the customer's screen."""
        customer = self._member(stylist.consultation_id, "customer")
        if customer is None:
            raise errors.NoCustomer()
        await customer.send(AskShown(what=what))

    async def upload_stats(self, customer: Participant, stats: Stats) -> None:
        """The customer's upload as its page measures it, to the stylist's quality panel."""
        stylist = self._member(customer.consultation_id, "stylist")
        if stylist is not None:
            await stylist.send(
                UploadStats(
                    video=stats.video, rtt_ms=stats.rtt_ms, at=datetime.now(UTC).isoformat()
                )
            )

    # --- recording the call (docs/media.md, Recording) ---------------------------------------

    async def record(self, participant: Participant, action: str) -> None:
        """A participant asks to record, agrees, refuses or stops (``record`` message)."""
        call = self._calls.get(participant.consultation_id)
        if call is None or call.room.member(participant.role) is not participant:
            raise errors.Replaced()
        role = participant.role
        if action == "ask":
            partner = call.room.member(partner_of(role))
            if partner is None or self._settings.forwarding != "packets":
                raise errors.RecordingUnavailable()
            events = call.consent.ask(role)
        elif action in ("agree", "refuse"):
            events = call.consent.answer(role, action == "agree")
        else:
            events = call.consent.stop(role)
        await self._apply_consent(call, events)

    async def _apply_consent(self, call: Call, events: list[ConsentEvent]) -> None:
        for event in events:
            match event:
                case Asked(by=by, agreed=agreed):
                    await self.broadcast(
                        call.consultation_id,
                        RecordingState(state="asked", by=by, agreed=list(agreed)),
                    )
                case Started():
                    try:
                        await self._start_recording(call)
                    except errors.StorageFailed as exc:
                        # Its rows could not be written (the database away): nothing is
                        # recorded, and both pages are told so.
                        await self._recording_failed(call, exc)
                case Ended(reason=reason, by=by, was_recording=was_recording):
                    if was_recording:
                        await self._stop_recording(call)
                    await self.broadcast(
                        call.consultation_id, RecordingState(state="off", by=by, reason=reason)
                    )

    async def _start_recording(self, call: Call, announce: bool = True) -> None:
        session = secrets.token_hex(12)
        started = datetime.now(UTC)
        ids = {role: secrets.token_hex(12) for role in ROLES}
        files = self._recording_files
        for role, recording_id in ids.items():
            await self._store.recordings.begin(
                Recording(
                    recording_id,
                    call.consultation_id,
                    role,
                    session,
                    "recording",
                    started,
                    str(files.staged(recording_id).relative_to(files.root)),
                )
            )
        recording = call.recording = CallRecording(call.consultation_id, call.forwarder, files, ids)
        recording.on("failed", lambda exc: self._spawn(self._recording_failed(call, exc)))
        recording.on("codec-changed", lambda: self._spawn(self._next_segment(call, recording)))
        recording.start()
        logger.info("%s: recording %s started", call.consultation_id, session)
        if announce:
            await self.broadcast(call.consultation_id, RecordingState(state="on"))

    async def _next_segment(self, call: Call, recording: CallRecording) -> None:
        """A participant's video changed codec (a page offered again with another one): its
        file cannot hold the new one, so both files end here and the recording goes on in a
        new pair (a new session, with its own time line); consent stands and the pages see no
        change (docs/media.md, Recording)."""
        if call.recording is not recording:
            return
        await self._stop_recording(call)
        if call.recording is not None or call.consent.state != "recording":
            return  # stopped, or started anew, meanwhile
        logger.info("%s: a video codec changed: recording on in new files", call.consultation_id)
        try:
            await self._start_recording(call, announce=False)
        except errors.StorageFailed as exc:
            await self._recording_failed(call, exc)
            return
        if call.consent.state != "recording":
            await self._stop_recording(call)  # ended while its rows were being made

    async def _recording_failed(self, call: Call, exc: BaseException) -> None:
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        logger.error("%s: the recording stopped: %s", call.consultation_id, exc)
        self.metrics.error(errors.StorageFull.code if full else errors.StorageFailed.code, "ws")
        reason: Reason = "storage-full" if full else "failed"
        await self._apply_consent(call, call.consent.stop(None, reason))

    async def _stop_recording(self, call: Call) -> None:
        recording, call.recording = call.recording, None
        if recording is None:
            return
        results = await recording.stop()
        loop = asyncio.get_running_loop()
        files = self._recording_files
        for role, result in results.items():
            recording_id = recording.recording_ids[role]
            row = Recording(recording_id, call.consultation_id, role, "", "recording",
                            datetime.now(UTC), "")  # fmt: skip
            try:
                if isinstance(result, Written):
                    finished = await loop.run_in_executor(
                        None, files.place, recording_id, call.consultation_id,
                        result.extension, result.duration_s,
                    )  # fmt: skip
                elif result is None:
                    finished = None
                else:  # the writer failed (a full disk): keep what it wrote
                    finished = await loop.run_in_executor(None, files.recover, row)
            except OSError:
                logger.exception("%s: recording %s left for the next start to finish",
                                 call.consultation_id, recording_id)  # fmt: skip
                continue
            if finished is None:
                await loop.run_in_executor(None, files.discard, recording_id)
            # The file is in place (or gone): its row follows now, or, while the database is
            # away, as soon as it is back.
            ended_at = datetime.now(UTC)
            try:
                await self._settle_row(recording_id, finished, ended_at, retries=1)
            except errors.StorageFailed:
                self._spawn(self._settle_row(recording_id, finished, ended_at))
        logger.info("%s: recording stopped", call.consultation_id)

    async def _settle_row(
        self,
        recording_id: str,
        finished: Finished | None,
        ended_at: datetime,
        retries: int = ROW_RETRIES,
    ) -> None:
        """Complete (or drop) a stopped recording's row, tried ``retries`` times while the
        database is away."""
        rows = self._store.recordings
        for attempt in range(retries):
            try:
                if finished is None:
                    await rows.discard(recording_id)
                else:
                    await rows.complete(recording_id, finished, ended_at)
                return
            except errors.StorageFailed:
                if attempt == retries - 1:
                    raise
                await asyncio.sleep(ROW_RETRY_S)

    def _member(self, consultation_id: str, role: Role) -> Participant | None:
        call = self._calls.get(consultation_id)
        member = call.room.member(role) if call is not None else None
        return member if isinstance(member, Participant) else None

    async def notes_changed(self, consultation: Consultation) -> None:
        """Tell whoever is connected: the stylist gets the notes too, the customer never."""
        call = self._calls.get(consultation.id)
        if call is None:
            await self._tell_owner(consultation.id, NodeAction(action="notes"))
        for member in call.members() if call is not None else []:
            if member.role == "stylist":
                await member.send(
                    NotesChanged(summary=consultation.summary, notes=consultation.notes)
                )
            else:
                await member.send(NotesChanged(summary=consultation.summary))

    async def show_swatch(self, stylist: Participant, swatch_id: str | None) -> None:
        """Put a palette swatch on the customer's screen (None: take it off), for the record
        too."""
        swatch = (await self._store.palette.get(swatch_id)).to_json() if swatch_id else None
        at = datetime.now(UTC)
        action: SwatchAction = "shown" if swatch else "cleared"
        await self._store.swatch_log.add(
            SwatchEvent(stylist.consultation_id, action, swatch, stylist.role, at)
        )
        await self.broadcast(stylist.consultation_id, SwatchShown(swatch=swatch, at=at.isoformat()))

    async def choose_swatch(self, stylist: Participant, swatch_id: str, chosen: bool) -> None:
        """Mark a swatch as the customer's choice, or take the mark back."""
        log = self._store.swatch_log
        swatch: dict[str, Any] | None
        if chosen:
            swatch = (await self._store.palette.get(swatch_id)).to_json()
        else:
            # The palette may have lost the swatch since: the mark goes by the recorded copy.
            marked = [c["swatch"] for c in (await log.board(stylist.consultation_id)).chosen]
            swatch = next((s for s in marked if s["id"] == swatch_id), None)
        if swatch is not None:
            await log.add(
                SwatchEvent(
                    stylist.consultation_id,
                    "chosen" if chosen else "unchosen",
                    swatch,
                    stylist.role,
                    datetime.now(UTC),
                )
            )
        board = await log.board(stylist.consultation_id)
        await self.broadcast(stylist.consultation_id, SwatchesChosen(swatches=board.chosen))

    async def broadcast(self, consultation_id: str, message: ServerMessage) -> None:
        """Send ``message`` to everyone in the consultation's call, if anyone is: here, or on
        the node that owns the call."""
        call = self._calls.get(consultation_id)
        if call is not None:
            await asyncio.gather(*(m.send(message) for m in call.members()))
        elif isinstance(message, FORWARDED):
            await self._tell_owner(
                consultation_id, NodeAction(action="broadcast", message=as_dict(message))
            )

    async def revoke(self, consultation_id: str) -> None:
        """Disconnect everyone using the consultation's (now revoked) links."""
        call = self._calls.get(consultation_id)
        if call is not None:
            await asyncio.gather(*(m.disconnect(errors.Revoked()) for m in call.members()))
        else:
            await self._tell_owner(consultation_id, NodeAction(action="revoke"))

    async def end(self, consultation_id: str) -> None:
        """Disconnect everyone in the consultation's call (as ``revoke``) and wait until they
        have left: its recording, if any, settled before the consultation is deleted."""
        call = self._calls.get(consultation_id)
        if call is None:
            await self._tell_owner(consultation_id, NodeAction(action="end"))
            return
        await self.revoke(consultation_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.over.wait(), END_WAIT)

    async def from_node(self, consultation_id: str, action: NodeAction) -> None:
        """What another node asks of this node's call (``_tell_owner``): done here only, never
        sent on (the call has ended here meanwhile: nothing to do)."""
        if consultation_id not in self._calls:
            return
        match action.action:
            case "broadcast" if action.message is not None:
                await self.broadcast(consultation_id, decode_server_message(action.message))
            case "revoke":
                await self.revoke(consultation_id)
            case "end":
                await self.end(consultation_id)
            case "notes":
                await self.notes_changed(await self._store.get_consultation(consultation_id))

    async def _tell_owner(self, consultation_id: str, action: NodeAction) -> None:
        """The call is not here: what the HTTP API did (a still saved, links revoked, notes,
        the consultation deleted) is told to the node that owns it, if another node does
        (consult/api/calls.py). A node that cannot be reached is logged, not waited for."""
        owner = await self._store.call_owners.get(consultation_id)
        me = self._node.node_id
        if owner is None or owner.node_id in (None, me) or owner.until is None:
            return
        if owner.until <= datetime.now(UTC):
            return
        assert owner.node_id is not None
        node = await self._store.nodes.get(owner.node_id)
        if node is None:
            return
        path = f"/internal/calls/{consultation_id}"
        body = encode_node_action(action)
        headers = self._node.sign("POST", path, body=body)
        try:
            async with self._node.session.post(
                node.url + path,
                data=body,
                headers=headers | {"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=END_WAIT + 5),
            ) as response:
                if response.status >= 300:
                    logger.warning("%s: node %s answered %s to %s", consultation_id,
                                   node.node_id, response.status, action.action)  # fmt: skip
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("%s: node %s not told of %s: %s", consultation_id, node.node_id,
                           action.action, exc)  # fmt: skip

    async def close(self) -> None:
        """Shut down: every websocket gets GOING_AWAY, every peer is closed."""
        self._closing = True
        members = [m for call in self.calls() for m in call.members()]
        await asyncio.gather(
            *(m.disconnect(code=WSCloseCode.GOING_AWAY) for m in members),
            return_exceptions=True,
        )
        # Each handler leaves its call as its websocket ends, which records the status.
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _apply(self, call: Call, events: list[Event]) -> None:
        # Record first, then tell: a client told "left" that asks finds the status already open.
        for event in sorted(events, key=lambda e: not isinstance(e, StateChanged)):
            match event:
                case Replaced(member=member):
                    assert isinstance(member, Participant)
                    # Its media stops now; its websocket close may wait on a slow client.
                    await member.close_peer()
                    self._spawn(member.disconnect(errors.Replaced()))
                case PeerJoined(member=member):
                    assert isinstance(member, Participant)
                    await member.send(Peer(state="joined"))
                case PeerLeft(member=member):
                    assert isinstance(member, Participant)
                    await member.send(Peer(state="left"))
                case StateChanged(state=state):
                    try:
                        await self._store.set_status(
                            call.consultation_id, "live" if state == "live" else "open"
                        )
                    except errors.StorageFailed:
                        # The call goes on without the database: hold_live records it live
                        # again when the database is back, and an unrenewed live lapses.
                        logger.warning(
                            "%s: status not saved (database unavailable)", call.consultation_id
                        )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
