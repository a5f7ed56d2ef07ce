"""One participant's outgoing stream at the packet level, as a pure protocol core.

In the style of aioquic's ``QuicConnection``: no I/O, no clock, no aiortc. The adapter
(``forward.RelayProtocol``) feeds it events as method calls, each with ``now`` (monotonic
seconds), and carries out the actions it takes from ``next_action()``.

The stream's source is our own encoder (the placeholder: a card, silence) or a partner's
stream. ``use(source)`` arms a switch: a key frame is requested from the partner (again at
most every ``KEYFRAME_RETRY`` while it does not come, and again once our leg is connected);
the placeholder goes on until the partner's first key-frame packet, from which the
placeholder holds and the partner's packets go out on our SSRC. One ``Renumber`` makes all
segments one stream (sequence numbers go on by one, timestamps by the time that passed, VP8
picture ids by one). Every packet sent is kept in a ``History``: a NACK is answered from it
(as RTX where negotiated), and a NACK it cannot answer becomes a key-frame request, so the
receiver never waits for what will not come. PLI/FIR and REMB from the receiver go to the
partner while it is the source (a key frame from our card otherwise). A key frame whose
size (VP8) or SPS (H.264) differs from the last one (a camera switched mid-call) is reported
as ``FormatChanged`` and one more key frame is asked for, so a receiver that lost part of the
first one shows the new camera anyway; a key frame whose timestamp goes back (a sender that
restarted its clock) starts a new segment, so our timestamps still only go forward.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .packets import (
    CodecKey,
    History,
    Renumber,
    is_keyframe_start,
    keyframe_test,
    stream_format,
    vp8_picture_id,
    vp8_with_picture_id,
)

__all__ = [
    "KEYFRAME_RETRY",
    "NACK_KEYFRAME_INTERVAL",
    "Codec",
    "CodecMismatch",
    "FormatChanged",
    "HoldPlaceholder",
    "OwnKeyframe",
    "Relay",
    "RelayAction",
    "RequestKeyframe",
    "Rtp",
    "Send",
    "SendRemb",
    "SenderInfo",
    "Switch",
    "parse_rtp",
]

#: While waiting for a switched-in partner's key frame, ask again this often; also the least
#: time between two key-frame requests to the partner (each costs a large frame).
KEYFRAME_RETRY = 0.25
#: A NACK the history cannot answer asks the source for a key frame at most this often.
NACK_KEYFRAME_INTERVAL = 0.1
#: The placeholder's source, whose segments need no key frame request.
OWN = "own"


@dataclass(slots=True)
class Rtp:
    """An RTP packet's fields that forwarding reads or writes (SSRC and mid are the leg's)."""

    payload_type: int
    marker: int
    sequence_number: int
    timestamp: int
    payload: bytes
    padding_size: int = 0
    #: The header extensions forwarded as they came: aiortc's (vad, level) or None.
    audio_level: Any = None
    abs_send_time: int | None = None


_HEADER = struct.Struct("!BBHII")


def parse_rtp(
    data: bytes, abs_send_time_id: int | None = None, audio_level_id: int | None = None
) -> tuple[int, Rtp] | None:
    """(SSRC, packet) of a decrypted RTP packet, or None if malformed. Only what forwarding
    reads: the fixed header, padding, and of the header extensions (RFC 8285, one- or
    two-byte) only abs-send-time and the audio level (as aiortc's ``(vad, level)``), by their
    negotiated ids. aiortc's ``RtpPacket.parse`` builds every extension and a CSRC list per
    packet; the server only forwards, so it reads no more than this."""
    if len(data) < 12:
        return None
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    pos = 12 + 4 * (first & 0x0F)
    end = len(data)
    abs_send_time = audio_level = None
    if first & 0x10:
        if end < pos + 4:
            return None
        profile = (data[pos] << 8) | data[pos + 1]
        stop = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
        if end < stop:
            return None
        at = pos + 4
        if profile == 0xBEDE:
            while at < stop:
                byte = data[at]
                if byte == 0:  # padding
                    at += 1
                    continue
                ident, size = byte >> 4, (byte & 0x0F) + 1
                if ident == 15:
                    break
                at += 1
                if ident == abs_send_time_id and size == 3:
                    abs_send_time = int.from_bytes(data[at : at + 3], "big")
                elif ident == audio_level_id and size == 1:
                    audio_level = (data[at] & 0x80 == 0x80, data[at] & 0x7F)
                at += size
        elif profile >> 4 == 0x100:
            while at + 1 < stop:
                ident, size = data[at], data[at + 1]
                at += 2
                if ident == 0:
                    at -= 1  # padding is one byte
                    continue
                if ident == abs_send_time_id and size == 3:
                    abs_send_time = int.from_bytes(data[at : at + 3], "big")
                elif ident == audio_level_id and size == 1:
                    audio_level = (data[at] & 0x80 == 0x80, data[at] & 0x7F)
                at += size
        pos = stop
    elif end < pos:
        return None
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > end - pos:
            return None
        end -= padding
    return ssrc, Rtp(
        second & 0x7F, second >> 7, sequence, timestamp, data[pos:end], padding, audio_level,
        abs_send_time,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Codec:
    """One codec our leg negotiated."""

    payload_type: int
    key: CodecKey
    #: Its RTX payload type, if RTX was negotiated for it.
    rtx_payload_type: int | None = None


# --- actions ----------------------------------------------------------------------------------


class RelayAction:
    """Something the adapter does for the core."""


@dataclass(slots=True)
class Send(RelayAction):
    """Put ``packet`` on the wire: on our SSRC, or on our RTX SSRC when ``rtx``."""

    packet: Rtp
    rtx: bool = False


@dataclass(slots=True)
class RequestKeyframe(RelayAction):
    """Ask the source (the partner's sender) for a key frame: RTCP PLI."""

    source: Hashable


@dataclass(slots=True)
class SendRemb(RelayAction):
    """Tell the source's sender the most its receiver takes."""

    source: Hashable
    bitrate: int


@dataclass(slots=True)
class OwnKeyframe(RelayAction):
    """Our placeholder's next frame must be a key frame."""


@dataclass(slots=True)
class HoldPlaceholder(RelayAction):
    """Stop (``held``) or resume our own encoder: the partner's packets go out instead."""

    held: bool


@dataclass(slots=True)
class CodecMismatch(RelayAction):
    """The source sends a codec our leg did not negotiate: it must be re-encoded instead."""

    source: Hashable
    codec: CodecKey


@dataclass(slots=True)
class FormatChanged(RelayAction):
    """The source's key frames changed size (VP8: (width, height)) or SPS (H.264: its bytes)."""

    source: Hashable
    format: Hashable


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """What our sender report says: the stream's RTP time at the report's NTP time, counts."""

    rtp_timestamp: int
    packet_count: int
    octet_count: int


# --- the core ---------------------------------------------------------------------------------


@dataclass
class Switch:
    """One switch to a partner: armed at, and when its first packet went out (None: not yet)."""

    armed: float
    first: float | None = None


class Relay:
    """One outgoing stream's decisions (see the module's docstring); ``kind`` "audio" or
    "video", ``codecs`` our leg's, first the one our own encoder uses."""

    def __init__(self, kind: str, codecs: Sequence[Codec], *, connected: bool = False) -> None:
        self.kind = kind
        self.codecs = tuple(codecs)
        self._by_key: dict[CodecKey, Codec] = {}
        for codec in self.codecs:
            self._by_key.setdefault(codec.key, codec)
        self._by_pt = {c.payload_type: c for c in self.codecs}
        self._vp8 = {c.payload_type for c in self.codecs if c.key.name == "vp8"}
        self._last_key: CodecKey | None = None
        self._last_out: Codec | None = None
        self._last_test: Callable[[bytes], bool] = keyframe_test("")
        self._own_codec = self.codecs[0].key.name if self.codecs else ""
        self.clock_rate = (
            self.codecs[0].key.clock_rate if self.codecs else (90000 if kind == "video" else 48000)
        )
        self._renumber = Renumber(self.clock_rate)
        #: What was sent, by sequence number, to answer NACKs.
        self.history: History[Send] = History()
        self._actions: deque[RelayAction] = deque()
        #: Whether our leg can send (DTLS up): a partner's key frame waits for it.
        self.connected = connected
        #: The partner's stream we forward or wait for; None: our placeholder.
        self.source: Hashable | None = None
        #: Whether the partner's packets go out now (not the placeholder).
        self.forwarding = False
        self._segment: tuple[Hashable, int] | None = None
        #: The current segment's source restarted its clock: nothing more until a key frame.
        self._restarted = False
        self._mismatched: set[CodecKey] = set()
        self._asked_at = -1e9
        self._format: Hashable | None = None
        self._rtx_seq = 0
        self.switches: list[Switch] = []
        self.packets = 0
        self.octets = 0
        self.forwarded = 0
        self.retransmitted = 0
        #: NACKs naming packets the history does not hold (a key frame was asked for instead,
        #: at most every NACK_KEYFRAME_INTERVAL).
        self.unanswerable = 0
        self._last_ts: int | None = None
        self._last_at = 0.0

    @property
    def segments(self) -> int:
        """Runs of the stream started so far, each from one source at a key frame, numbered on
        from the last (a switch, or a source that restarted its clock)."""
        return self._renumber.segments

    # --- events in ----------------------------------------------------------------------------

    def use(self, source: Hashable | None, now: float) -> None:
        """Forward ``source``'s stream from its next key frame on (None: the placeholder)."""
        if source == self.source:
            return
        self.source = source
        self._format = None
        self._mismatched = set()
        if self.forwarding:  # the placeholder until the new source's key frame
            self.forwarding = False
            self._segment = None
            self._actions.append(HoldPlaceholder(False))
            self._actions.append(OwnKeyframe())
        if source is not None:
            self.switches.append(Switch(now))
            self._request_keyframe(now)

    def set_connected(self, now: float) -> None:
        """Our leg can send now: a key frame asked for before it could would be lost."""
        if self.connected:
            return
        self.connected = True
        if self.source is not None and not self.forwarding:
            switch = self.switches[-1]
            switch.armed = max(switch.armed, now)  # the switch starts when we can send
            self._request_keyframe(now)

    def own_packet(self, packet: Rtp, now: float) -> None:
        """A packet of our own encoder (the placeholder): renumbered into the stream, or
        refused while the partner's packets go out."""
        if self.forwarding:
            return
        if self._segment is None or self._segment[0] != OWN:
            if not is_keyframe_start(self._own_codec, packet.payload):
                self._actions.append(OwnKeyframe())
                return
            self._start((OWN, 0), packet, self._own_codec, now)
            if self.kind == "audio":
                packet.marker = 1  # a talkspurt begins
        self._send(packet, now)

    def partner_packet(
        self, source: Hashable, ssrc: int, codec: CodecKey, packet: Rtp, now: float
    ) -> None:
        """A packet of a partner's stream (decrypted, not depacketized)."""
        if source != self.source:
            return
        if codec is self._last_key:  # the same codec object as the last packet's: no hashing
            out, starts_keyframe = self._last_out, self._last_test
        else:
            out, starts_keyframe = self._by_key.get(codec), keyframe_test(codec.name)
            self._last_key, self._last_out, self._last_test = codec, out, starts_keyframe
        if out is None:
            if codec not in self._mismatched:
                self._mismatched.add(codec)
                self._actions.append(CodecMismatch(source, codec))
            return
        video = self.kind == "video"
        keyframe = video and starts_keyframe(packet.payload)
        segment = (source, ssrc)
        if segment == self._segment and not self._restarted:
            # A packet after the newest whose time goes back: the source restarted its clock
            # (aiortc does on replaceTrack). A new segment, from a key frame, keeps ours going.
            self._restarted = self._renumber.goes_back(packet.sequence_number, packet.timestamp)
        if segment != self._segment or self._restarted:
            if not self.connected:
                return  # a key frame now would be lost: asked for again on connecting
            if video and not keyframe:
                if now - self._asked_at >= KEYFRAME_RETRY:
                    self._request_keyframe(now)
                return
            self._start(segment, packet, codec.name, now)
            if not self.forwarding:
                self.forwarding = True
                self._actions.append(HoldPlaceholder(True))
            if self.switches and self.switches[-1].first is None:
                self.switches[-1].first = now
        if keyframe:
            found = stream_format(codec.name, packet.payload)
            if found is not None and found != self._format:
                if self._format is not None:
                    self._actions.append(FormatChanged(source, found))
                    if now - self._asked_at >= KEYFRAME_RETRY:
                        self._request_keyframe(now)
                self._format = found
        packet.payload_type = out.payload_type
        if self._send(packet, now):
            self.forwarded += 1

    def nack(self, lost: Iterable[int], now: float) -> None:
        """The receiver misses these of our sequence numbers: resend them from the history;
        what it no longer holds (or never sent) only a key frame can repair."""
        unanswered = False
        for seq in lost:
            sent = self.history.get(seq & 0xFFFF)
            if sent is None:
                unanswered = True
                continue
            self.retransmitted += 1
            original = sent.packet
            codec = self._by_pt.get(original.payload_type)
            rtx_pt = codec.rtx_payload_type if codec is not None else None
            if rtx_pt is None:
                self._actions.append(sent)
                continue
            rtx = Rtp(
                rtx_pt,
                original.marker,
                self._rtx_seq,
                original.timestamp,
                struct.pack("!H", original.sequence_number) + original.payload,
                0,
                original.audio_level,
                original.abs_send_time,
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            self._actions.append(Send(rtx, rtx=True))
        if unanswered and self.kind == "video":
            self.unanswerable += 1
            if not self.forwarding:
                self._actions.append(OwnKeyframe())
            elif now - self._asked_at >= NACK_KEYFRAME_INTERVAL:
                self._request_keyframe(now)

    def keyframe_request(self, now: float) -> None:
        """A PLI or FIR from the receiver."""
        if self.forwarding:
            self._request_keyframe(now)
        else:
            self._actions.append(OwnKeyframe())

    def remb(self, bitrate: int) -> None:
        """The receiver's estimate: the partner's sender should not send more."""
        if self.forwarding and self.source is not None:
            self._actions.append(SendRemb(self.source, bitrate))

    def sender_info(self, ntp: float, now: float, wall: float) -> SenderInfo | None:
        """What our sender report with NTP time ``ntp`` says (the NTP time is kept: the
        receiver quotes it back). ``now`` is the monotonic time of the other events, ``wall``
        the Unix time at ``now``, ``ntp`` a Unix time too. None: nothing sent yet."""
        if self._last_ts is None:
            return None
        elapsed = ntp - (wall - (now - self._last_at))
        rtp = (self._last_ts + round(elapsed * self.clock_rate)) & 0xFFFFFFFF
        return SenderInfo(rtp, self.packets & 0xFFFFFFFF, self.octets & 0xFFFFFFFF)

    # --- actions out --------------------------------------------------------------------------

    def next_action(self) -> RelayAction | None:
        return self._actions.popleft() if self._actions else None

    # --- internals ----------------------------------------------------------------------------

    def _request_keyframe(self, now: float) -> None:
        if self.source is not None and self.kind == "video":
            self._asked_at = now
            self._actions.append(RequestKeyframe(self.source))

    def _start(self, segment: tuple[Hashable, int], packet: Rtp, codec: str, now: float) -> None:
        found = vp8_picture_id(packet.payload) if codec == "vp8" else None
        self._renumber.start(
            segment, packet.sequence_number, packet.timestamp, found[0] if found else None, now
        )
        self._segment = segment
        self._restarted = False

    def _send(self, packet: Rtp, now: float) -> bool:
        renumber = self._renumber
        mapped = renumber.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return False  # late, from before this segment
        seq = mapped[0]
        if self.history.get(seq) is not None:
            # A duplicate: each segment's numbers follow all earlier ones, so only a packet
            # sent already can hold this number within the history.
            return False
        packet.sequence_number, packet.timestamp = mapped
        if packet.payload_type in self._vp8:
            found = vp8_picture_id(packet.payload)
            if found is not None:
                packet.payload = vp8_with_picture_id(
                    packet.payload, renumber.map_picture_id(*found)
                )
        send = Send(packet)
        self.history.add(seq, send)
        self._actions.append(send)
        self.packets += 1
        self.octets += len(packet.payload)
        self._last_ts = renumber.ts
        self._last_at = renumber.at if renumber.at is not None else now
        return True
