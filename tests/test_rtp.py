"""Packet-level pieces without a network: key frame detection, renumbering, the history."""

from __future__ import annotations

import itertools
import struct

from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.media.packets import (
    Gaps,
    History,
    Renumber,
    codec_key,
    h264_keyframe_start,
    h264_sps,
    stream_format,
    vp8_frame_data,
    vp8_keyframe_size,
    vp8_keyframe_start,
    vp8_picture_id,
    vp8_with_picture_id,
)
from consult.media.placeholder import encoded_card

from .payloads import h264_idr, h264_sps_stap, vp8


def test_vp8_key_frames_are_recognised_only_at_their_start() -> None:
    assert vp8_keyframe_start(vp8(True, True))
    assert vp8_keyframe_start(vp8(True, True, picture_id=None))
    assert not vp8_keyframe_start(vp8(False, True))  # a continuation
    assert not vp8_keyframe_start(vp8(True, False))  # an inter frame
    assert not vp8_keyframe_start(vp8(True, True, pid=1))  # another partition
    assert not vp8_keyframe_start(b"")
    assert not vp8_keyframe_start(b"\x90")  # truncated descriptor
    # What libvpx makes of the waiting card starts with a key frame, then does not.
    card = encoded_card("test card", "vp8")
    assert vp8_keyframe_start(b"\x10" + card[0])
    assert not vp8_keyframe_start(b"\x10" + card[1])


def test_h264_key_frames_alone_aggregated_or_fragmented() -> None:
    sps, pps, idr, slice_ = b"\x67\x42", b"\x68\xce", b"\x65\x88", b"\x41\x9a"
    assert h264_keyframe_start(sps)
    assert h264_keyframe_start(idr)
    assert not h264_keyframe_start(pps)
    assert not h264_keyframe_start(slice_)
    stap = b"\x78" + struct.pack("!H", 2) + sps + struct.pack("!H", 2) + pps
    assert h264_keyframe_start(stap)
    assert not h264_keyframe_start(b"\x78" + struct.pack("!H", 2) + slice_)
    assert not h264_keyframe_start(b"\x78" + struct.pack("!H", 40) + sps)  # size lies
    assert h264_keyframe_start(b"\x7c\x85" + bytes(10))  # FU-A start of an IDR
    assert not h264_keyframe_start(b"\x7c\x05" + bytes(10))  # ...not its start
    assert not h264_keyframe_start(b"\x7c\x81" + bytes(10))  # FU-A start of a slice
    assert not h264_keyframe_start(b"")


def test_vp8_picture_ids_are_read_and_replaced_in_place() -> None:
    payload = vp8(True, True, picture_id=1234)
    assert vp8_picture_id(payload) == (1234, 0x8000)
    changed = vp8_with_picture_id(payload, 77)
    assert vp8_picture_id(changed) == (77, 0x8000)
    assert len(changed) == len(payload) and changed[4:] == payload[4:]
    assert vp8_picture_id(vp8(True, True, picture_id=None)) is None
    assert vp8_frame_data(payload) == payload[4:]


def test_a_key_frame_tells_its_size_and_an_h264_key_frame_its_sps() -> None:
    assert vp8_keyframe_size(vp8(True, True, size=(640, 480))) == (640, 480)
    assert vp8_keyframe_size(vp8(True, False)) is None
    assert vp8_keyframe_size(b"\x10\x00") is None  # truncated
    card = encoded_card("test card", "vp8")
    assert vp8_keyframe_size(b"\x10" + card[0]) == (640, 360)
    sps = b"\x67\x42\xc0\x1f\x8c\x8d"
    assert h264_sps(h264_sps_stap(sps)) == sps
    assert h264_sps(sps) == sps
    assert h264_sps(b"\x7c\x87" + sps[1:]) == sps[1:]  # FU-A start of an SPS
    assert h264_sps(h264_idr()) is None
    assert stream_format("VP8", vp8(True, True, size=(320, 240))) == (320, 240)
    assert stream_format("opus", b"\x00") is None


def test_renumbering_makes_one_stream_of_several_sources() -> None:
    out = Renumber(90000)
    seqs: list[int] = []
    stamps: list[int] = []
    now = 100.0
    sources = [("own", 500, 1000), ("partner", 65530, 4_294_960_000), ("own", 900, 7000)]
    for index, (source, seq0, ts0) in enumerate(sources):
        out.start(source, seq0, ts0, now=now)
        for i in range(20):
            now += 1 / 30
            mapped = out.map((seq0 + i) & 0xFFFF, (ts0 + i * 3000) & 0xFFFFFFFF, now)
            assert mapped is not None
            seqs.append(mapped[0])
            stamps.append(mapped[1])
        # A late packet of the previous segment is refused once a new one started.
        if index:
            assert out.map((seq0 - 1) & 0xFFFF, ts0, now) is None
        now += 2.0  # two seconds between sources
    steps = [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)]
    assert steps == [1] * len(steps)
    ts_steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)]
    assert all(0 < step <= 3 * 90000 for step in ts_steps)
    assert max(ts_steps) >= 2 * 90000  # the pause shows in the timestamps


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0x7FFF))
def test_renumbering_keeps_offsets_across_wraparound(seq: int, ts: int, pic: int) -> None:
    out = Renumber(48000)
    out.start("a", seq, ts, pic, now=1.0)
    first = out.map(seq, ts, 1.0)
    assert first is not None
    for step in range(1000, 140_000, 1000):  # twice around the sequence number space
        later = out.map((seq + step) & 0xFFFF, (ts + step * 30) & 0xFFFFFFFF, 2.0)
        assert later is not None
        assert (later[0] - first[0]) & 0xFFFF == step & 0xFFFF
        assert (later[1] - first[1]) & 0xFFFFFFFF == (step * 30) & 0xFFFFFFFF
    assert out.map_picture_id((pic + 3) % 0x8000, 0x8000) == (out.picture_id or 0)


def test_history_answers_only_for_what_it_still_holds() -> None:
    history: History[bytes] = History(size=8)
    for seq in range(65530, 65540):
        history.add(seq & 0xFFFF, bytes([seq & 0xFF]))
    assert history.get(65535) == b"\xff"
    assert history.get(3) == bytes([3])
    assert history.get(65530) is None  # overwritten
    assert history.get(100) is None


def test_codecs_match_by_name_clock_and_h264_packetization() -> None:
    one = codec_key("video/H264", 90000, None, {"packetization-mode": 1, "profile-level-id": "x"})
    other = codec_key("video/h264", 90000, None, {"packetization-mode": "1"})
    assert one == other
    assert one != codec_key("video/H264", 90000, None, {})
    assert codec_key("audio/opus", 48000, 2, {}) != codec_key("audio/opus", 48000, 1, {})


@settings(deadline=None)  # aiortc's generator walks a gap one number at a time
@given(
    st.integers(0, 0xFFFF),
    st.lists(
        st.integers(-300, 300) | st.sampled_from([1, 1, 1, 1000, 0x8000, 0x8001]), max_size=80
    ),
)
def test_gaps_answer_as_aiortcs_nack_generator(start: int, steps: list[int]) -> None:
    """The receive path's gap tracker (NACKs upstream) says what aiortc's NackGenerator says,
    for any order, loss, duplicate or jump of sequence numbers."""
    ours, theirs = Gaps(), NackGenerator()
    seq = start
    for step in [0, *steps]:
        seq = (seq + step) & 0xFFFF
        opened = ours.add(seq)
        assert opened == theirs.add(RtpPacket(sequence_number=seq))
        assert ours.missing == theirs.missing
        assert ours.max_seq == theirs.max_seq
