"""Packet-level forwarding through the real server: continuity across switches, key frames on
a switch, NACK recovery both ways, stills decoding only while they run, codec steering and
fallback, and hostile packets dropped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import struct
import time
from typing import Any

import pylibsrtp
import pytest
from aiohttp.test_utils import TestServer
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from consult.media.forward import RelayProtocol

from . import wire
from .calls import in_call, peer_of
from .client import CallClient, RtpSample, VideoSample
from .media import SOURCES, PatternTrack

pytestmark = pytest.mark.timeout(90)


def relay_of(
    server: TestServer, consultation: dict[str, Any], role: str, kind: str
) -> RelayProtocol:
    return peer_of(server, consultation, role).relays[kind]  # type: ignore[index]


def media_stream(samples: list[RtpSample]) -> list[RtpSample]:
    """The packets of the (one) media SSRC, RTX left out."""
    ssrcs = {s.ssrc for s in samples}
    main = max(ssrcs, key=lambda ssrc: sum(1 for s in samples if s.ssrc == ssrc))
    return [s for s in samples if s.ssrc == main]


def assert_continuous(samples: list[RtpSample], clock: int) -> None:
    """One SSRC whose sequence numbers go up by one and whose timestamps never go back or leap."""
    assert len({s.ssrc for s in samples}) == 1
    ordered = sorted(
        samples, key=lambda s: (s.seq - samples[0].seq) & 0xFFFF
    )  # unwrap from the first
    seqs = [(s.seq - samples[0].seq) & 0xFFFF for s in ordered]
    assert seqs == list(range(len(seqs))), "sequence numbers must be contiguous"
    for a, b in itertools.pairwise(ordered):
        step = (b.ts - a.ts) & 0xFFFFFFFF
        assert step < 5 * clock, f"timestamp jumps by {step} at seq {b.seq}"


def all_clean(client: CallClient, since: float = 0.0) -> None:
    """Every decoded frame is a pattern or the card: nothing corrupt was shown."""
    bad = [s for s in client.received.video if s.at >= since and s.pattern is None and not s.card]
    assert not bad, f"{len(bad)} frames neither a pattern nor the card"


async def in_call_with_codecs(
    clients: Any,
    consultation: dict[str, Any],
    customer_codecs: tuple[str, ...],
    stylist_codecs: tuple[str, ...],
) -> tuple[CallClient, CallClient]:
    """Both in the call, each offering only ``*_codecs`` for video, each seeing 30 frames of
    the other."""
    customer: CallClient = clients(
        "customer", consultation["customer_link"], video_codecs=customer_codecs
    )
    stylist: CallClient = clients(
        "stylist", consultation["stylist_link"], video_codecs=stylist_codecs
    )
    await customer.connect()
    await customer.start_media()
    await stylist.connect()
    await stylist.start_media()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 30)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 30)
    return customer, stylist


async def test_packets_are_forwarded_without_decoding_and_the_stream_is_continuous(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.start_media()
    await customer.wait_for(lambda: customer.placeholder_frames() >= 3)

    for round_ in range(2):  # the stylist joins, leaves, and joins again
        stylist: CallClient = clients("stylist", consultation["stylist_link"])
        await stylist.connect()
        assert (await customer.expect("peer"))["state"] == "joined"
        joined = time.monotonic()
        await stylist.start_media()
        await customer.wait_for(lambda t=joined: len(customer.partner_frames("stylist", t)) >= 30)
        await stylist.wait_for(lambda s=stylist: len(s.partner_frames("customer")) >= 30)
        for role in ("customer", "stylist"):
            for kind in ("audio", "video"):
                assert relay_of(server, consultation, role, kind).forwarding
            # Nothing is decoded on the server: no still is being taken.
            for inlet in peer_of(server, consultation, role).inlets.values():
                assert inlet.reception is not None
                assert not inlet.reception.decoding
                assert inlet.reception.decoded_frames == 0
                assert inlet.frames == 0
        numbers = [n for _, n in customer.partner_frames("stylist", joined)]
        assert numbers == sorted(numbers)
        assert numbers[0] < 30  # the new stream from (near) its start
        all_clean(stylist)
        await stylist.send({"type": "bye"})
        await stylist.closed()
        await stylist.close_media()
        assert (await customer.expect("peer"))["state"] == "left"
        left = time.monotonic()
        await customer.wait_for(lambda t=left: customer.placeholder_frames(since=t) >= 3)
        assert round_ in (0, 1)

    # placeholder -> partner -> placeholder -> partner -> placeholder: one clean stream.
    all_clean(customer)
    assert_continuous(media_stream(customer.received.rtp["video"]), 90000)
    assert_continuous(media_stream(customer.received.rtp["audio"]), 48000)


async def test_forwarded_packets_bypass_aiortcs_receive_and_send_path(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    """The fast path (consult/media/internals.py) carries the media: the server's DTLS
    transports see only RTCP and DTLS of what comes and goes, while the receptions and relays
    count every packet."""
    customer, stylist = await in_call(clients, consultation)
    peer = peer_of(server, consultation, "stylist")
    dtls = peer._pc.getTransceivers()[0].receiver.transport

    def counts() -> tuple[int, int, int, int]:
        receptions = sum(i.reception.packets for i in peer.inlets.values() if i.reception)
        relays = sum(r.packets_sent for r in peer.relays.values())
        return (
            dtls._RTCDtlsTransport__rx_packets,
            dtls._RTCDtlsTransport__tx_packets,
            receptions,
            relays,
        )

    before = counts()
    await asyncio.sleep(2)
    rx, tx, received, sent = (b - a for a, b in zip(before, counts(), strict=True))
    assert received > 100 and sent > 100
    # RTCP: a report or two a second per stream, NACKs and PLIs: not a packet per packet.
    assert rx < received / 5
    assert tx < sent / 5
    all_clean(customer)
    all_clean(stylist)


async def test_a_partner_switched_in_mid_stream_starts_at_a_key_frame_within_150_ms(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    _customer, stylist = await in_call(clients, consultation)
    await asyncio.sleep(1)  # the customer's encoder is well past its first key frame
    await stylist.close_media()
    again = time.monotonic()
    await stylist.start_media()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", again)) >= 5)
    relay = relay_of(server, consultation, "stylist", "video")
    switch = relay.core.switches[-1]
    armed, first = switch.armed, switch.first
    assert first is not None
    assert first - armed < 0.150, f"first partner packet {1000 * (first - armed):.0f} ms after"
    # ...and what the stylist's decoder shows first is that frame, clean.
    shown = stylist.partner_frames("customer", again)[0][0]
    assert shown - armed < 0.300, f"first partner frame shown {1000 * (shown - armed):.0f} ms"
    all_clean(stylist, again)


def video_rtp_of(client: CallClient, data: bytes) -> bool:
    """Whether ``data`` (unencrypted) is an RTP packet of the client's video sender."""
    assert client.pc is not None
    if len(data) < 12 or 192 <= data[1] <= 208:
        return False
    video = next(t for t in client.pc.getTransceivers() if t.kind == "video")
    return struct.unpack("!I", data[8:12])[0] == video.sender._ssrc


async def test_a_packet_lost_downstream_is_recovered_by_nack_from_the_history(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, _stylist = await in_call(clients, consultation)
    seen = 0
    dropped: list[int] = []

    def drop_one(packet: RtpPacket) -> bool:
        nonlocal seen
        seen += 1
        if seen == 40:
            dropped.append(packet.sequence_number)
            return True
        return False

    customer.drop_received["video"] = drop_one
    since = time.monotonic()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", since)) >= 60)
    assert dropped
    assert relay_of(server, consultation, "customer", "video").core.retransmitted >= 1
    numbers = [n for _, n in customer.partner_frames("stylist", since)]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a frame was lost"


async def test_a_packet_lost_upstream_is_recovered_by_our_nack(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call(clients, consultation)
    assert stylist.pc is not None
    transport = stylist.pc.getTransceivers()[0].sender.transport
    sent = 0

    def drop_one(data: bytes) -> bool:
        nonlocal sent
        if video_rtp_of(stylist, data):
            sent += 1
            return sent != 40
        return True

    wire.intercept_sent(transport, drop_one)
    since = time.monotonic()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", since)) >= 60)
    assert sent > 40
    numbers = [n for _, n in customer.partner_frames("stylist", since)]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a frame was lost"
    all_clean(customer, since)


async def test_malformed_and_foreign_packets_are_dropped_and_the_call_goes_on(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call(clients, consultation)
    assert stylist.pc is not None
    transport = stylist.pc.getTransceivers()[0].sender.transport
    video = next(t for t in stylist.pc.getTransceivers() if t.kind == "video")
    video_pt = video._codecs[0].payloadType
    ours = media_stream(stylist.received.rtp["video"])[0].ssrc  # the server's sender
    keyframe_like = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A]) + bytes(200)

    def rtp(pt: int, ssrc: int, seq: int, payload: bytes) -> bytes:
        return struct.pack("!BBHII", 0x80, pt, seq, 12345, ssrc) + payload

    def hostile(i: int) -> list[bytes]:
        return [
            rtp(127, 0x1234, i, b"unknown payload type"),
            rtp(video_pt, 0xDEADBEEF, 3 * i, keyframe_like),  # a second, foreign video stream
            rtp(video_pt, 0xDEADBEEF, 3 * i + 1, b""),
            bytes([0x80]),  # truncated
            rtp(video_pt, 0xDEADBEEF, 3 * i + 2, b"\x80"),  # truncated VP8 descriptor
            b"\x81\xcd\x00\x09" + bytes(8),  # RTCP feedback whose length lies
            struct.pack("!BBHII", 0x81, 206, 2, 1, 0xABCDEF),  # PLI for an unknown SSRC
            struct.pack("!BBHIIHH", 0x81, 205, 3, 1, ours, i, 0xFFFF),  # NACK for unsent packets
            struct.pack("!BBHII", 0x8F, 206, 4, 1, 0) + b"REMB" + bytes(4),  # REMB for nobody
            struct.pack("!BBHI", 0x80, 200, 1, 1),  # SR too short
        ]

    # Each SRTP packet once: the server's SRTP refuses replays before we see them.
    for i in range(1, 21):
        for data in hostile(i):
            with contextlib.suppress(pylibsrtp.Error):  # what SRTP cannot even protect
                await wire.send_raw(transport, data)
    since = time.monotonic()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", since)) >= 30)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", since)) >= 30)
    assert relay_of(server, consultation, "customer", "video").forwarding
    all_clean(customer)
    assert_continuous(media_stream(customer.received.rtp["video"]), 90000)
    reception = peer_of(server, consultation, "stylist").inlets["video"].reception
    assert reception is not None and reception.dropped >= 3 * 20


async def test_a_stream_still_decodes_only_while_it_is_taken(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call(clients, consultation)
    inlet = peer_of(server, consultation, "customer").inlets["video"]
    assert inlet.reception is not None and not inlet.reception.decoding
    await stylist.send({"type": "capture"})
    await customer.expect("capture-request")
    still = (await stylist.expect("still", timeout=15))["still"]
    assert still["source"] == "video"
    assert (still["width"], still["height"]) == customer.video_size
    assert inlet.reception.decoded_frames > 0
    assert not inlet.reception.decoding  # stopped with the burst
    decoded = inlet.reception.decoded_frames
    await asyncio.sleep(0.5)
    assert inlet.reception.decoded_frames == decoded
    # Forwarding never stopped.
    since = time.monotonic()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", since)) >= 10)


async def test_both_on_h264_forward_h264_packets(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call_with_codecs(
        clients, consultation, ("video/H264",), ("video/H264", "video/VP8")
    )
    # The stylist offered both: the server steered it to the customer's codec.
    for role in ("customer", "stylist"):
        peer = peer_of(server, consultation, role)
        assert relay_of(server, consultation, role, "video").forwarding
        sent = peer.sent_codec("video")
        assert sent is not None and sent.name == "H264"
    all_clean(customer)
    all_clean(stylist)


async def test_legs_without_a_common_codec_fall_back_to_re_encoding(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, _stylist = await in_call_with_codecs(
        clients, consultation, ("video/VP8",), ("video/H264",)
    )
    for role in ("customer", "stylist"):
        assert not relay_of(server, consultation, role, "video").forwarding
        assert relay_of(server, consultation, role, "audio").forwarding  # Opus on both
    assert_continuous(media_stream(customer.received.rtp["audio"]), 48000)


async def test_receiver_feedback_reaches_the_partners_sender(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call(clients, consultation)
    assert customer.pc is not None and stylist.pc is not None
    forwarded_ssrc = media_stream(customer.received.rtp["video"])[0].ssrc
    sender = next(t for t in stylist.pc.getTransceivers() if t.kind == "video").sender
    requests: list[float] = []
    original = sender._send_keyframe

    def counted() -> None:
        requests.append(time.monotonic())
        original()

    sender._send_keyframe = counted  # type: ignore[method-assign]
    transport = customer.pc.getTransceivers()[0].sender.transport
    # A weak receiver: REMB 400 kbps for the stream it gets; the sender's encoder follows.
    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(400_000, [forwarded_ssrc])
    )
    await wire.send_raw(transport, bytes(remb))
    encoder = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
    await stylist.wait_for(lambda: encoder.target_bitrate == 400_000, 5)
    # Picture loss at the receiver: the sender is asked for a key frame.
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=forwarded_ssrc)
    await wire.send_raw(transport, bytes(pli))
    await stylist.wait_for(lambda: bool(requests), 5)


async def test_a_camera_switched_mid_call_reaches_the_partner_at_its_new_size_within_1_s(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    """replaceTrack, as a phone switching cameras: same SSRC, another size from a key frame."""
    customer, stylist = await in_call(clients, consultation)
    assert customer.pc is not None
    relay = relay_of(server, consultation, "stylist", "video")
    changes: list[object] = []
    relay.on("format", changes.append)
    sender = next(t for t in customer.pc.getTransceivers() if t.kind == "video").sender
    switched = PatternTrack(SOURCES["customer"], 480, 360)
    sender.replaceTrack(switched)
    since = time.monotonic()

    def new_size() -> list[VideoSample]:
        return [
            s
            for s in stylist.received.video
            if s.at >= since and s.pattern and (s.width, s.height) == (480, 360)
        ]

    await stylist.wait_for(lambda: len(new_size()) >= 10)
    # Measured, not asserted (docs/media.md has the numbers): the switch takes well under 1 s.
    print(json.dumps({"camera_switch_to_partner_ms": round((new_size()[0].at - since) * 1000)}))
    assert changes == [(480, 360)]
    all_clean(stylist, since)
    assert_continuous(media_stream(stylist.received.rtp["video"]), 90000)
    # A still taken now decodes the new size on the server.
    customer.video_size = (480, 360)
    await stylist.send({"type": "capture"})
    still = (await stylist.expect("still", timeout=15))["still"]
    assert (still["source"], still["width"], still["height"]) == ("video", 480, 360)
    switched.stop()
