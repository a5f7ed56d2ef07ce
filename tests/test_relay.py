"""The relay core alone, in milliseconds: switches, renumbering, key-frame gating, the NACK
history, feedback, sender reports, a camera switched mid-stream; and properties over any order
of packets, losses, duplicates, switches and NACKs."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Hashable
from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consult.media.packets import CodecKey, codec_key, vp8_keyframe_start, vp8_picture_id
from consult.media.relay import (
    KEYFRAME_RETRY,
    NACK_KEYFRAME_INTERVAL,
    Codec,
    CodecMismatch,
    FormatChanged,
    HoldPlaceholder,
    OwnKeyframe,
    Relay,
    RelayAction,
    RequestKeyframe,
    Rtp,
    Send,
    SendRemb,
    parse_rtp,
)

from .payloads import h264_idr, h264_slice, h264_sps_stap, vp8

VP8 = codec_key("video/VP8", 90000, None, {})
H264 = codec_key("video/H264", 90000, None, {"packetization-mode": "1"})
OPUS = codec_key("audio/opus", 48000, 2, {})
#: Our leg: VP8 on 96 (RTX 97), H.264 on 102 (no RTX).
LEG = (Codec(96, VP8, 97), Codec(102, H264))
PARTNER, OTHER = "partner", "other partner"


def drain(relay: Relay) -> list[RelayAction]:
    actions = []
    while (action := relay.next_action()) is not None:
        actions.append(action)
    return actions


def sent(actions: list[RelayAction], rtx: bool = False) -> list[Rtp]:
    return [a.packet for a in actions if isinstance(a, Send) and a.rtx == rtx]


def frame(seq: int, ts: int, pic: int, key: bool, parts: int = 2, pt: int = 100) -> list[Rtp]:
    """One VP8 frame of ``parts`` packets, as a partner's browser sends it."""
    return [
        Rtp(pt, int(i == parts - 1), (seq + i) & 0xFFFF, ts, vp8(i == 0, key, pic))
        for i in range(parts)
    ]


def placeholder(relay: Relay, n: int, now: float) -> list[Rtp]:
    """``n`` card frames (one packet each, the first a key frame) from our own encoder."""
    out: list[Rtp] = []
    for i in range(n):
        relay.own_packet(Rtp(96, 1, 7000 + i, 900 * i, vp8(True, i == 0, 50 + i)), now + i / 10)
        out += sent(drain(relay))
    return out


def test_placeholder_then_partner_from_its_key_frame_on_one_stream() -> None:
    relay = Relay("video", LEG, connected=True)
    card = placeholder(relay, 3, 0.0)
    assert len(card) == 3
    relay.use(PARTNER, 1.0)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    # Mid-GOP packets wait for the key frame; the card goes on meanwhile.
    for packet in frame(500, 10_000, 7, key=False):
        relay.partner_packet(PARTNER, 11, VP8, packet, 1.05)
    assert drain(relay) == []
    relay.own_packet(Rtp(96, 1, 7003, 2700, vp8(True, False, 53)), 1.06)
    card += sent(drain(relay))
    # Another non-key packet after KEYFRAME_RETRY asks again.
    relay.partner_packet(
        PARTNER, 11, VP8, frame(502, 13_000, 8, key=False)[0], 1.0 + KEYFRAME_RETRY
    )
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    out: list[Rtp] = []
    actions: list[RelayAction] = []
    for i in range(5):
        for packet in frame(504 + 2 * i, 16_000 + 3000 * i, 9 + i, key=i == 0):
            relay.partner_packet(PARTNER, 11, VP8, packet, 1.4 + i / 30)
            actions += drain(relay)
    assert actions[0] == HoldPlaceholder(True)
    out = sent(actions)
    assert relay.forwarding and relay.switches[-1].first == 1.4
    assert vp8_keyframe_start(out[0].payload)
    assert all(p.payload_type == 96 for p in out)  # the partner's 100 is our leg's 96
    # Our encoder's packets are refused now.
    relay.own_packet(Rtp(96, 1, 7004, 3600, vp8(True, False, 54)), 1.5)
    assert drain(relay) == []
    stream = card + out
    assert [
        (b.sequence_number - a.sequence_number) & 0xFFFF for a, b in itertools.pairwise(stream)
    ] == [1] * (len(stream) - 1)
    pics = [vp8_picture_id(p.payload) for p in stream]
    ids = [k for k, _ in itertools.groupby(p[0] for p in pics if p)]  # a frame's packets share one
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert pics[len(card)] is not None and pics[len(card) - 1] is not None
    assert pics[len(card)][0] == pics[len(card) - 1][0] + 1
    ts_steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(stream)]
    assert all(step < 1 << 31 for step in ts_steps)


def test_a_partner_leaving_brings_the_card_back_from_its_key_frame() -> None:
    relay = Relay("video", LEG, connected=True)
    relay.use(PARTNER, 0.0)
    for packet in frame(1, 0, 1, key=True):
        relay.partner_packet(PARTNER, 11, VP8, packet, 0.1)
    drain(relay)
    relay.use(None, 0.2)
    assert drain(relay) == [HoldPlaceholder(False), OwnKeyframe()]
    # A late packet of the partner is not ours any more; the card restarts at a key frame.
    relay.partner_packet(PARTNER, 11, VP8, frame(3, 3000, 2, key=False)[0], 0.21)
    assert drain(relay) == []
    relay.own_packet(Rtp(96, 1, 7001, 900, vp8(True, False, 51)), 0.25)
    assert drain(relay) == [OwnKeyframe()]
    relay.own_packet(Rtp(96, 1, 7002, 1800, vp8(True, True, 52)), 0.3)
    assert len(sent(drain(relay))) == 1


def test_a_key_frame_before_our_leg_connects_is_not_spent() -> None:
    relay = Relay("video", LEG, connected=False)
    relay.use(PARTNER, 0.0)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    for packet in frame(1, 0, 1, key=True):
        relay.partner_packet(PARTNER, 11, VP8, packet, 0.1)
    assert drain(relay) == []
    relay.set_connected(0.5)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    assert relay.switches[-1].armed == 0.5
    relay.partner_packet(PARTNER, 11, VP8, frame(3, 3000, 2, key=True)[0], 0.55)
    assert sent(drain(relay))


def forwarding(relay: Relay, frames: int = 3) -> list[Rtp]:
    relay.use(PARTNER, 0.0)
    out: list[Rtp] = []
    for i in range(frames):
        for packet in frame(100 + 2 * i, 3000 * i, i, key=i == 0):
            relay.partner_packet(PARTNER, 11, VP8, packet, 0.1 + i / 30)
            out += sent(drain(relay))
    return out


def test_nacks_are_answered_from_the_history_as_rtx_or_become_a_key_frame_request() -> None:
    relay = Relay("video", LEG, connected=True)
    out = forwarding(relay)
    lost = out[2]
    relay.nack([lost.sequence_number], 1.0)
    actions = drain(relay)
    (rtx,) = sent(actions, rtx=True)
    assert rtx.payload_type == 97
    assert rtx.payload[:2] == struct.pack("!H", lost.sequence_number)
    assert rtx.payload[2:] == lost.payload and rtx.timestamp == lost.timestamp
    assert relay.retransmitted == 1
    # What was never sent (or is too old) asks the partner for a key frame, not too often.
    relay.nack([(out[-1].sequence_number + 100) & 0xFFFF], 1.0)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    relay.nack([(out[-1].sequence_number + 101) & 0xFFFF], 1.0 + NACK_KEYFRAME_INTERVAL / 2)
    assert drain(relay) == []
    relay.nack([(out[-1].sequence_number + 102) & 0xFFFF], 1.0 + NACK_KEYFRAME_INTERVAL)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    # Without RTX (H.264 here) the packet itself goes again.
    h264 = Relay("video", (Codec(102, H264),), connected=True)
    h264.use(PARTNER, 0.0)
    for packet in (Rtp(100, 0, 1, 0, h264_sps_stap(b"\x67\x42")), Rtp(100, 1, 2, 0, h264_idr())):
        h264.partner_packet(PARTNER, 11, H264, packet, 0.1)
    first = sent(drain(h264))[0]
    h264.nack([first.sequence_number], 0.2)
    assert sent(drain(h264)) == [first]


def test_receiver_feedback_goes_to_the_partner_while_forwarding_else_to_our_card() -> None:
    relay = Relay("video", LEG, connected=True)
    placeholder(relay, 1, 0.0)
    relay.keyframe_request(0.1)
    assert drain(relay) == [OwnKeyframe()]
    relay.remb(400_000)
    assert drain(relay) == []
    relay.nack([1], 0.1)  # never sent: the card's next frame is a key frame
    assert drain(relay) == [OwnKeyframe()]
    forwarding(relay)
    relay.keyframe_request(2.0)
    assert drain(relay) == [RequestKeyframe(PARTNER)]
    relay.remb(400_000)
    assert drain(relay) == [SendRemb(PARTNER, 400_000)]


def test_a_codec_our_leg_lacks_is_reported_once() -> None:
    relay = Relay("video", (Codec(96, VP8),), connected=True)
    relay.use(PARTNER, 0.0)
    drain(relay)
    av1: CodecKey = codec_key("video/AV1", 90000, None, {})
    for seq in range(3):
        relay.partner_packet(PARTNER, 11, av1, Rtp(45, 0, seq, 0, b"\x00" * 10), 0.1)
    assert drain(relay) == [CodecMismatch(PARTNER, av1)]
    assert not relay.forwarding


def test_a_camera_switched_mid_call_new_size_or_sps_goes_on_one_stream() -> None:
    """replaceTrack in the browser: same SSRC, a key frame of another size. It is forwarded
    at once, reported, and one more key frame is asked for (in case the first was damaged)."""
    relay = Relay("video", LEG, connected=True)
    out = forwarding(relay)
    actions: list[RelayAction] = []
    # aiortc restarts its RTP clock on replaceTrack (browsers do not): time must not go back.
    switched = [
        Rtp(100, 0, 106, 500, vp8(True, True, 3, size=(640, 480))),
        Rtp(100, 1, 107, 500, vp8(False, True, 3)),
        Rtp(100, 1, 108, 3500, vp8(True, False, 4)),
    ]
    for packet in switched:
        relay.partner_packet(PARTNER, 11, VP8, packet, 5.0)
        actions += drain(relay)
    assert FormatChanged(PARTNER, (640, 480)) in actions
    assert RequestKeyframe(PARTNER) in actions
    out += sent(actions)
    seqs = [p.sequence_number for p in out]
    assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)] == [1] * (len(seqs) - 1)
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(out)]
    assert all(step < 1 << 31 for step in steps)
    assert (out[-1].timestamp - out[-2].timestamp) & 0xFFFFFFFF == 3000
    # The same size again is no change.
    relay.partner_packet(
        PARTNER, 11, VP8, Rtp(100, 1, 109, 6500, vp8(True, True, 5, size=(640, 480))), 6.0
    )
    assert not any(isinstance(a, FormatChanged) for a in drain(relay))
    # H.264: a new SPS.
    h264 = Relay("video", (Codec(102, H264),), connected=True)
    h264.use(PARTNER, 0.0)
    drain(h264)
    changes = []
    for i, sps in enumerate((b"\x67\x42\xc0\x1f", b"\x67\x42\xc0\x1f", b"\x67\x42\xc0\x28")):
        for packet in (
            Rtp(100, 0, 10 * i, 3000 * i, h264_sps_stap(sps)),
            Rtp(100, 1, 10 * i + 1, 3000 * i, h264_idr()),
            Rtp(100, 1, 10 * i + 2, 3000 * i + 1500, h264_slice()),
        ):
            h264.partner_packet(PARTNER, 11, H264, packet, 1.0 + i)
            changes += [a for a in drain(h264) if isinstance(a, FormatChanged)]
    assert changes == [FormatChanged(PARTNER, b"\x67\x42\xc0\x28")]


def test_sender_reports_map_the_stream_time_and_count_what_was_sent() -> None:
    relay = Relay("audio", (Codec(111, OPUS),), connected=True)
    assert relay.sender_info(1000.0, 5.0, 1000.0) is None
    relay.use(PARTNER, 0.0)
    packets = [Rtp(109, 0, 40 + i, 960 * i, b"\x01" * 30) for i in range(3)]
    out = []
    for i, packet in enumerate(packets):
        relay.partner_packet(PARTNER, 11, OPUS, packet, 1.0 + 0.02 * i)
        out += sent(drain(relay))
    # A report 0.5 s (wall clock) after the last packet went out: its time plus 0.5 s of 48 kHz.
    info = relay.sender_info(ntp=2000.5, now=1.04, wall=2000.0)
    assert info is not None
    assert info.rtp_timestamp == (out[-1].timestamp + 24_000) & 0xFFFFFFFF
    assert (info.packet_count, info.octet_count) == (3, 90)


# --- properties -------------------------------------------------------------------------------


@dataclass
class Source:
    """A partner's stream: frames of two packets, a key frame every fifth, its clock restarted
    once; the payload's tail names the source and its sequence number, so what went out can be
    traced back."""

    name: str
    ssrc: int
    seq0: int
    packets: list[Rtp] = field(default_factory=list)
    cursor: int = 0

    def __post_init__(self) -> None:
        for f in range(40):
            for part in range(2):
                seq = (self.seq0 + 2 * f + part) & 0xFFFF
                tail = self.name.encode()[:1] + struct.pack("!H", seq)
                payload = vp8(part == 0, f % 5 == 0, (self.seq0 + f) & 0x7FFF, tail=tail)
                # From frame 5 (a key frame) its clock restarts, as aiortc's on replaceTrack:
                # back by the minutes the call has lasted.
                ts = self.seq0 * 7 + 3000 * f - (0 if f < 5 else 90000 * 600)
                self.packets.append(Rtp(100, part, seq, ts & 0xFFFFFFFF, payload))


#: The next packet of a partner (mostly the first), or one a little before or after it.
PACKET = st.tuples(
    st.just("packet"),
    st.sampled_from([PARTNER, PARTNER, PARTNER, OTHER]),
    st.one_of(st.just(0), st.integers(-4, 2)),
)
EVENTS = st.lists(
    st.one_of(
        PACKET,
        PACKET,
        PACKET,
        PACKET,
        PACKET,
        st.tuples(st.just("use"), st.sampled_from([None, PARTNER, OTHER])),
        st.tuples(st.just("lose"), st.sampled_from([PARTNER, OTHER]), st.integers(1, 6)),
        st.tuples(st.just("own"), st.just(0)),
        st.tuples(st.just("nack"), st.lists(st.integers(0, 600), max_size=4)),
        st.tuples(st.just("pli"), st.just(0)),
        st.tuples(st.just("connect"), st.just(0)),
        st.tuples(st.just("wait"), st.floats(0.0, 0.5)),
    ),
    min_size=60,
    max_size=200,
)


def unwrap(values: list[int], bits: int) -> list[int]:
    out, last = [], None
    half, full = 1 << (bits - 1), 1 << bits
    for v in values:
        last = v if last is None else last + ((v - last + half) % full) - half
        out.append(last)
    return out


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.booleans())
# In order across the wrap and the source's clock restart; then the same with a switch away
# and back, a duplicate, a loss and NACKs.
@example([("packet", PARTNER, 0)] * 16, 0xFFF8, 0, True)
@example(
    [("packet", PARTNER, 0)] * 6
    + [("packet", PARTNER, -2), ("nack", [0, 3, 500]), ("use", OTHER), ("packet", OTHER, 0)]
    + [("lose", PARTNER, 3), ("use", PARTNER), ("own", 0), ("packet", PARTNER, 0)] * 3,
    0xFFF0,
    7,
    True,
)
def test_any_order_loss_duplicates_switches_and_nacks_keep_one_clean_stream(
    events: list[tuple[object, ...]], seq_a: int, seq_b: int, connected: bool
) -> None:
    relay = Relay("video", LEG, connected=connected)
    relay.use(PARTNER, 0.0)
    sources = {PARTNER: Source(PARTNER, 11, seq_a), OTHER: Source(OTHER, 22, seq_b)}
    own = 0
    now = 0.0
    #: Every packet sent on our SSRC, with the source it came from (None: our card) and the
    #: segment it belongs to.
    stream: list[tuple[tuple[Hashable | None, int], Rtp]] = []
    keyframe_asked: list[float] = []
    for event in events:
        now += 0.01
        kind = event[0]
        nacked: list[int] = []
        if kind == "use":
            relay.use(event[1], now)  # type: ignore[arg-type]
        elif kind == "packet":
            source = sources[event[1]]  # type: ignore[index]
            index = source.cursor + event[2]  # type: ignore[operator]
            source.cursor += 1
            if 0 <= index < len(source.packets):
                original = source.packets[index]
                copy = Rtp(
                    original.payload_type,
                    original.marker,
                    original.sequence_number,
                    original.timestamp,
                    original.payload,
                )
                relay.partner_packet(source.name, source.ssrc, VP8, copy, now)
        elif kind == "lose":
            sources[event[1]].cursor += event[2]  # type: ignore[index, operator]
        elif kind == "own":
            relay.own_packet(
                Rtp(
                    96, 1, 9000 + own, 9000 * own, vp8(True, own % 10 == 0, own, tail=b"c\x00\x00")
                ),
                now,
            )
            own += 1
        elif kind == "nack":
            mine = [p.sequence_number for _, p in stream]
            nacked = [mine[-1 - i] if i < len(mine) else (i * 977) & 0xFFFF for i in event[1]]  # type: ignore[union-attr]
            relay.nack(nacked, now)
        elif kind == "pli":
            relay.keyframe_request(now)
        elif kind == "connect":
            relay.set_connected(now)
        else:
            now += event[1]  # type: ignore[operator]
        actions = drain(relay)
        if any(isinstance(a, RequestKeyframe | OwnKeyframe) for a in actions):
            keyframe_asked.append(now)
        for action in actions:
            if isinstance(action, Send) and not action.rtx:
                tag = action.packet.payload[-3:-2]
                origin = PARTNER if tag == b"p" else OTHER if tag == b"o" else None
                stream.append(((origin, relay.segments), action.packet))
        # Every NACK is answered from the history, or a key frame is on its way.
        answered = {
            struct.unpack("!H", a.packet.payload[:2])[0]
            for a in actions
            if isinstance(a, Send) and a.rtx
        }
        if set(nacked) - answered:
            assert keyframe_asked and now - keyframe_asked[-1] < NACK_KEYFRAME_INTERVAL + 0.011

    # Nothing before connecting went out from a partner, no number went out twice, and each
    # segment (a run from one origin) follows the last: numbers on by one, time forward.
    seqs = unwrap([p.sequence_number for _, p in stream], 16)
    assert len(set(seqs)) == len(seqs), "a sequence number went out twice"
    segments = [
        list(g) for _, g in itertools.groupby(zip(stream, seqs, strict=True), key=lambda e: e[0][0])
    ]
    newest_seq: int | None = None
    newest_ts: int | None = None
    for segment in segments:
        origin = segment[0][0][0][0]
        first = segment[0][0][1]
        if origin is not None:
            assert vp8_keyframe_start(first.payload), "a partner packet before its key frame"
        if newest_seq is not None:
            assert segment[0][1] == newest_seq + 1, "the numbering jumps at a switch"
            assert min(s for _, s in segment) > newest_seq
            assert 0 < (first.timestamp - newest_ts) & 0xFFFFFFFF < 1 << 31, "time went back"
        # Within a segment each packet keeps its distance to the first (losses stay gaps).
        if origin is not None:
            src = [struct.unpack("!H", p.payload[-2:])[0] for (_, p), _ in segment]
            offsets = {
                (s - src_seq) & 0xFFFF for ((_, _), s), src_seq in zip(segment, src, strict=True)
            }
            assert len(offsets) == 1
        # ...and by sequence number, time never goes back.
        by_seq = sorted(segment, key=lambda e: e[1])
        steps = [
            (b[0][1].timestamp - a[0][1].timestamp) & 0xFFFFFFFF
            for a, b in itertools.pairwise(by_seq)
        ]
        assert all(step < 1 << 31 for step in steps), "time went back within a segment"
        newest_seq = max(s for _, s in segment)
        newest_ts = max(
            (p.timestamp for (_, p), _ in segment),
            key=lambda ts: (ts - first.timestamp) & 0xFFFFFFFF,
        )


# --- the header parse of the fast path ----------------------------------------------------------

#: Extension ids as Chromium offers them (audio level 1, abs-send-time 2, mid 4).
_EXTENSIONS = HeaderExtensionsMap()
_EXTENSIONS.configure(
    RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(
                id=1, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
            ),
            RTCRtpHeaderExtensionParameters(
                id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            ),
            RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        ]
    )
)


@given(
    st.integers(0, 127),
    st.integers(0, 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=40),
    st.integers(0, 20),
    st.none() | st.text("0123456789abc", min_size=1, max_size=16),
    st.none() | st.integers(0, 0xFFFFFF),
    st.none() | st.tuples(st.booleans(), st.integers(0, 127)),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=3),
)
def test_the_header_parse_reads_what_aiortc_reads(
    pt: int,
    marker: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    padding: int,
    mid: str | None,
    abs_send_time: int | None,
    audio_level: tuple[bool, int] | None,
    csrc: list[int],
) -> None:
    packet = RtpPacket(pt, marker, seq, ts, ssrc, payload)
    packet.csrc = csrc
    packet.padding_size = padding
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.audio_level = audio_level
    data = packet.serialize(_EXTENSIONS)
    theirs = RtpPacket.parse(data, _EXTENSIONS)
    parsed = parse_rtp(data, 2, 1)
    assert parsed == (
        theirs.ssrc,
        Rtp(
            theirs.payload_type, theirs.marker, theirs.sequence_number, theirs.timestamp,
            theirs.payload, theirs.padding_size, theirs.extensions.audio_level,
            theirs.extensions.abs_send_time,
        ),
    )  # fmt: skip


@given(st.binary(max_size=64))
@example(bytes([0x80]))
@example(struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + b"\xbe\xde\x00\x09")  # extension too long
@example(struct.pack("!BBHII", 0x8F, 96, 1, 2, 3))  # CSRCs missing
@example(struct.pack("!BBHII", 0xA0, 96, 1, 2, 3) + b"\x00\x00\x09")  # padding too long
def test_a_malformed_header_is_refused_where_aiortc_refuses_it(data: bytes) -> None:
    try:
        theirs: RtpPacket | None = RtpPacket.parse(data, _EXTENSIONS)
    except ValueError:
        theirs = None
    parsed = parse_rtp(data, 2, 1)
    if theirs is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed[0] == theirs.ssrc
        assert parsed[1].payload == theirs.payload
