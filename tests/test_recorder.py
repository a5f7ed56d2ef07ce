"""The recorder core alone, in milliseconds: depacketising VP8, H.264 and Opus, unwrapping,
reordering, key-frame start, losses, sender-report alignment; and properties over any order
of packets within the window."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from consult.media.packets import codec_key
from consult.media.recorder import (
    OPEN_WAIT,
    REORDER_WINDOW,
    CloseFile,
    OpenFile,
    Recorder,
    RecorderAction,
    RequestKeyframe,
    TrackFormat,
    WriteFrame,
    unwrap,
)
from consult.media.relay import Rtp

from .payloads import h264_idr, h264_slice, h264_sps_stap, vp8

VP8 = codec_key("video/VP8", 90000, None, {})
H264 = codec_key("video/H264", 90000, None, {"packetization-mode": "1"})
OPUS = codec_key("audio/opus", 48000, 2, {})
PCMU = codec_key("audio/PCMU", 8000, 1, {})
T0 = 1_800_000_000.0  # the server's wall clock when the recording begins
V_SSRC, A_SSRC = 1111, 2222


def drain(core: Recorder) -> list[RecorderAction]:
    actions = []
    while (action := core.next_action()) is not None:
        actions.append(action)
    return actions


def writes(actions: list[RecorderAction], track: int | None = None) -> list[WriteFrame]:
    return [a for a in actions if isinstance(a, WriteFrame) and (track is None or a.track == track)]


def vp8_frame(number: int, seq: int, ts: int, key: bool, parts: int = 3) -> list[Rtp]:
    """One VP8 frame of ``parts`` packets; each part's tail says which frame and part it is."""
    packets = []
    for i in range(parts):
        payload = vp8(i == 0, key, tail=bytes([number & 0xFF, i]) * 4)
        packets.append(Rtp(96, int(i == parts - 1), (seq + i) & 0xFFFF, ts & 0xFFFFFFFF, payload))
    return packets


def video_stream(
    frames: int, seq: int = 100, ts: int = 5000, key_every: int = 30, parts: int = 3
) -> list[Rtp]:
    packets: list[Rtp] = []
    for n in range(frames):
        packets += vp8_frame(n, seq + n * parts, ts + n * 3000, n % key_every == 0, parts)
    return packets


def audio_stream(frames: int, seq: int = 7, ts: int = 900) -> list[Rtp]:
    return [
        Rtp(111, 0, (seq + n) & 0xFFFF, (ts + n * 960) & 0xFFFFFFFF, bytes([0xFC, n & 0xFF]))
        for n in range(frames)
    ]


def feed_video(
    core: Recorder, packets: list[Rtp], start: float, ssrc: int = V_SSRC, delay: float = 0.005
) -> float:
    """Each packet arrives ``delay`` after its frame was captured (``start``: the first's
    capture), its parts 1 ms apart; returns when the last arrived."""
    first = packets[0].timestamp
    now = start
    for packet in packets:
        captured = start + ((packet.timestamp - first) % 2**32) / 90000
        now = max(now, captured + delay)
        core.packet("video", ssrc, VP8, packet, now)
        now += 0.001
    return now


def test_unwrap_goes_on_across_the_wrap() -> None:
    assert unwrap(None, 65535, 16) == 65535
    assert unwrap(65535, 0, 16) == 65536
    assert unwrap(65536, 65534, 16) == 65534
    assert unwrap(2**32 - 10, 5, 32) == 2**32 + 5


@given(st.integers(0, 2**40), st.integers(-(2**15) + 1, 2**15 - 1))
def test_unwrap_finds_the_nearest(last: int, delta: int) -> None:
    assert unwrap(last, (last + delta) % 65536, 16) == last + delta


def test_video_starts_on_a_key_frame_and_asks_for_one() -> None:
    core = Recorder(T0)
    # The recording begins mid-stream: frames 0-4 are not key frames; 5 is.
    packets = []
    for n in range(12):
        packets += vp8_frame(n, 10 + 3 * n, 3000 * n, key=n == 5)
    # The sender's clock is 1 s behind ours; its RTP 0 was at our origin (both tracks': the
    # video is written once the audio has a time too).
    core.sender_report("video", V_SSRC, T0 - 1.0, 0, T0)
    core.sender_report("audio", A_SSRC, T0 - 1.0, 0, T0)
    for packet in audio_stream(1):
        core.packet("audio", A_SSRC, OPUS, packet, T0)
    feed_video(core, packets, T0)
    actions = drain(core)
    assert isinstance(actions[0], RequestKeyframe)
    assert sum(isinstance(a, RequestKeyframe) for a in actions) == 1  # not once per frame
    opened = next(a for a in actions if isinstance(a, OpenFile))
    assert opened.tracks[0] == TrackFormat("video", "vp8", 1280, 720)
    video = writes(actions, 0)
    assert [w.data[-1] for w in video][:1] == [2]  # the last part of the first frame written
    assert [w.key for w in video] == [True] + [False] * 6
    # Frame 5 is RTP 15000: 1/6 s after the origin.
    assert [w.pts_ms for w in video] == [167, 200, 233, 267, 300, 333, 367]


def test_frames_are_the_depacketised_parts_in_order() -> None:
    core = Recorder(T0)
    packets = video_stream(3)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    feed_video(core, packets, T0)
    core.stop(T0 + 1)
    frames = writes(drain(core))
    assert len(frames) == 3
    # The key frame's data is the VP8 bitstream: the descriptor (4 bytes here) is gone.
    assert frames[0].data.startswith(b"\x00\x00\x00\x9d\x01\x2a")
    assert frames[1].data == b"".join(
        p.payload[4:] for p in packets[3:6]
    )  # the three parts, joined
    assert [f.pts_ms for f in frames] == [0, 33, 67]


def test_a_loss_the_nacks_did_not_repair_drops_until_the_next_key_frame() -> None:
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    packets = video_stream(60, key_every=30)
    lost = packets[3 * 10 + 1]  # the middle of frame 10
    now = T0
    for packet in packets:
        if packet is lost:
            continue
        core.packet("video", V_SSRC, VP8, packet, now)
        now += 0.03
        core.tick(now)
    core.stop(now)
    actions = drain(core)
    assert core.losses == 1
    assert any(isinstance(a, RequestKeyframe) for a in actions)
    pts = [w.pts_ms for w in writes(actions)]
    # Frames 0-9 and 30-59: nothing from the loss to the next key frame.
    assert len(pts) == 40
    assert pts[10] == 1000


def test_a_late_packet_within_the_window_is_put_back_in_order() -> None:
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    packets = video_stream(10)
    late = packets.pop(7)
    now = feed_video(core, packets[:12], T0)
    core.tick(now + REORDER_WINDOW["video"] / 2)
    core.packet("video", V_SSRC, VP8, late, now + REORDER_WINDOW["video"] / 2)
    feed_video(core, packets[12:], now + REORDER_WINDOW["video"] / 2)
    core.stop(T0 + 2)
    assert len(writes(drain(core))) == 10
    assert core.losses == 0


def test_audio_and_video_are_aligned_by_their_sender_reports() -> None:
    """Different RTP bases and clocks; one sender clock 100 s ahead of ours: frames captured
    at the same moment get the same time in the file."""
    core = Recorder(T0)
    skew = 100.0
    v_base, a_base = 4_000_000_000, 123_456  # video wraps soon after
    # At sender time T0 + skew + 0.5 the video's RTP clock read v_base + 45000, the audio's
    # a_base + 24000: both tracks' first frame is 0.5 s after the origin.
    core.sender_report("video", V_SSRC, T0 + skew + 0.5, (v_base + 45000) % 2**32, T0 + 0.5)
    core.sender_report("audio", A_SSRC, T0 + skew + 0.5, a_base + 24000, T0 + 0.5)
    video = video_stream(90, ts=v_base + 45000)  # 3 s: across the 32-bit wrap
    audio = audio_stream(150, ts=a_base + 24000)
    arrivals = [(T0 + 0.5 + (i // 3) / 30, "video", p) for i, p in enumerate(video)]
    arrivals += [(T0 + 0.5 + i * 0.02, "audio", p) for i, p in enumerate(audio)]
    for at, kind, packet in sorted(arrivals, key=lambda a: a[0]):
        if kind == "video":
            core.packet("video", V_SSRC, VP8, packet, at)
        else:
            core.packet("audio", A_SSRC, OPUS, packet, at)
    core.stop(T0 + 4)
    actions = drain(core)
    video_pts = [w.pts_ms for w in writes(actions, 0)]
    audio_pts = [w.pts_ms for w in writes(actions, 1)]
    assert video_pts[0] == 500 and audio_pts[0] == 500
    assert video_pts[-1] == 500 + round(89 * 1000 / 30)
    assert audio_pts[-1] == 500 + 149 * 20


def test_a_sender_report_later_than_the_packets_is_bounded_by_their_arrival() -> None:
    """aiortc pairs its clock with the RTP time of the last packet it sent: a report may put
    the stream later than its packets arrived. The earliest arrival bounds it."""
    core = Recorder(T0)
    # The report says RTP 5000 was at T0 + 0.1; its packets arrive from T0 + 0.005 on.
    core.sender_report("video", V_SSRC, T0 + 0.1, 5000, T0 + 0.1)
    now = feed_video(core, video_stream(30), T0)
    core.stop(now)
    assert writes(drain(core))[0].pts_ms == 5


def test_h264_fragments_become_annex_b() -> None:
    core = Recorder(T0)
    sps = b"\x67\x42\xc0\x1f\xda\x01\x40\x16\xe8"
    fu_start = b"\x7c\x85" + b"\xaa" * 10  # FU-A, start, IDR
    fu_end = b"\x7c\x45" + b"\xbb" * 10  # FU-A, end, IDR
    packets = [
        Rtp(102, 0, 1, 0, h264_sps_stap(sps)),
        Rtp(102, 0, 2, 0, fu_start),
        Rtp(102, 1, 3, 0, fu_end),
        Rtp(102, 1, 4, 3000, h264_slice(b"\xcc" * 5)),
        Rtp(102, 1, 5, 6000, h264_idr(b"\xdd")),
    ]
    core.sender_report("video", V_SSRC, T0, 0, T0)
    for packet in packets:
        core.packet("video", V_SSRC, H264, packet, T0)
    core.stop(T0)
    actions = drain(core)
    opened = next(a for a in actions if isinstance(a, OpenFile))
    assert opened.tracks == (TrackFormat("video", "h264"),)
    frames = writes(actions)
    start = b"\x00\x00\x00\x01"
    assert (
        frames[0].data
        == start
        + sps
        + start
        + b"\x68\xce\x3c\x80"
        + start
        + b"\x65"
        + (b"\xaa" * 10)
        + b"\xbb" * 10
    )
    assert frames[0].key and not frames[1].key
    assert frames[1].data == start + h264_slice(b"\xcc" * 5)


def test_audio_only_opens_after_waiting_for_video() -> None:
    core = Recorder(T0)
    core.sender_report("audio", A_SSRC, T0, 900, T0)
    now = T0
    for packet in audio_stream(50):
        core.packet("audio", A_SSRC, OPUS, packet, now)
        now += 0.02
    assert not any(isinstance(a, OpenFile) for a in drain(core))
    core.tick(T0 + OPEN_WAIT + 0.1)
    actions = drain(core)
    assert actions[0] == OpenFile((TrackFormat("audio", "opus", rate=48000),))
    assert len(writes(actions)) == 50


def test_nothing_received_closes_an_empty_file_and_other_codecs_are_refused() -> None:
    core = Recorder(T0)
    core.packet("audio", A_SSRC, PCMU, Rtp(0, 0, 1, 1, b"\xff" * 160), T0)
    core.stop(T0 + 1)
    assert drain(core) == [CloseFile(empty=True)]
    assert core.refused == 1
    core.packet("audio", A_SSRC, OPUS, Rtp(111, 0, 2, 2, b"\xfc"), T0 + 2)  # after stop
    assert drain(core) == []


def test_another_video_codec_once_the_file_is_open_asks_for_new_files() -> None:
    """A page that offers again with H.264 while its VP8 is recorded: the file cannot hold
    both, so nothing of the new codec goes in it and the adapter is told to go on in new
    files; an unrecordable codec is only refused."""
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    core.sender_report("audio", A_SSRC, T0, 900, T0)
    for packet in audio_stream(1):
        core.packet("audio", A_SSRC, OPUS, packet, T0)
    end = feed_video(core, video_stream(10), T0)
    assert core.opened
    core.packet("video", V_SSRC + 1, codec_key("video/AV1", 90000, None, {}), vp8(True, True), end)
    assert core.refused == 1 and not core.codec_changed
    before = len(writes(drain(core), 0))
    core.packet("video", V_SSRC + 1, H264, Rtp(102, 1, 1, 0, h264_idr(b"\xdd")), end + 0.01)
    assert core.codec_changed and core.refused == 2
    core.stop(end + 1)
    assert all(w.data[:4] != b"\x00\x00\x00\x01" for w in writes(drain(core), 0))
    assert before > 0


def test_without_a_sender_report_arrival_times_anchor_the_track() -> None:
    core = Recorder(T0)
    now = feed_video(core, video_stream(30), T0 + 0.25)
    assert not writes(drain(core))
    core.stop(now)
    frames = writes(drain(core))
    assert len(frames) == 30
    assert frames[0].pts_ms == 250 + 5  # when its first packet came


def test_a_new_ssrc_continues_the_track_from_its_key_frame() -> None:
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    feed_video(core, video_stream(10), T0)
    # The page offered again: a new SSRC, new numbers; its report ties it to the same clock.
    core.sender_report("video", 3333, T0 + 1.0, 777, T0 + 1.0)
    now = feed_video(core, video_stream(10, seq=40000, ts=777), T0 + 1.0, ssrc=3333)
    core.stop(now)
    pts = [w.pts_ms for w in writes(drain(core))]
    assert len(pts) == 20
    assert pts[10] == 1000
    assert pts == sorted(pts)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_any_order_within_the_window_gives_every_frame_once_in_order(
    rng: random.Random, seq: int, ts: int
) -> None:
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, ts, T0)
    packets = video_stream(40, seq=seq, ts=ts, key_every=10, parts=4)
    # After the first packet (where the track's numbers begin), shuffle within blocks of 8
    # packets (a few ms of video): the reordering a network does.
    shuffled: list[Rtp] = packets[:1]
    for i in range(1, len(packets), 8):
        block = packets[i : i + 8]
        rng.shuffle(block)
        shuffled += block
    # And some duplicates.
    for _ in range(5):
        shuffled.insert(rng.randrange(1, len(shuffled)), rng.choice(packets))
    now = T0
    for packet in shuffled:
        core.packet("video", V_SSRC, VP8, packet, now)
        now += 0.0005
    core.stop(now)
    frames = writes(drain(core))
    assert [f.data[-2] for f in frames] == list(range(40))
    assert all(b.pts_ms > a.pts_ms for a, b in itertools.pairwise(frames))
    assert core.losses == 0


def test_sound_from_before_the_agreement_is_not_written() -> None:
    core = Recorder(T0)
    # RTP 900 was captured 0.1 s before both agreed: its first five 20 ms frames came before.
    core.sender_report("audio", A_SSRC, T0 - 0.1, 900, T0 - 0.1)
    for i, packet in enumerate(audio_stream(50)):
        core.packet("audio", A_SSRC, OPUS, packet, T0 - 0.095 + i * 0.02)
    core.stop(T0 + 1)
    pts = [w.pts_ms for w in writes(drain(core))]
    assert pts[0] == 0 and len(pts) == 45
    assert all(b - a == 20 for a, b in itertools.pairwise(pts))


def test_the_tracks_frames_go_to_the_file_in_time_order_whichever_is_anchored_first() -> None:
    """Under load a track's first sender report can come seconds after the other's: the
    anchored track's frames wait for the other's rather than go first, so the file is in time
    order (a file whose clusters go back in time fails Chromium's decoder once its paused
    player resumes from a seek)."""
    core = Recorder(T0)
    core.sender_report("video", V_SSRC, T0, 5000, T0)
    video = video_stream(90)  # 3 s
    audio = audio_stream(150, ts=900)
    arrivals = [(T0 + 0.01 + (i // 3) / 30, "video", p) for i, p in enumerate(video)]
    arrivals += [(T0 + 0.01 + i * 0.02, "audio", p) for i, p in enumerate(audio)]
    arrivals.append((T0 + 2.5, "report", None))  # the audio's, late
    emitted: list[WriteFrame] = []
    tick = T0
    for at, kind, packet in sorted(arrivals, key=lambda a: a[0]):
        if kind == "report":
            core.sender_report("audio", A_SSRC, T0, 900, at)
        elif kind == "video":
            core.packet("video", V_SSRC, VP8, packet, at)
        else:
            core.packet("audio", A_SSRC, OPUS, packet, at)
        if at - tick >= 0.2:
            tick = at
            core.tick(at)
        emitted += writes(drain(core))
    core.stop(T0 + 3.1)
    emitted += writes(drain(core))
    assert len(writes_of := [w for w in emitted if w.track == 0]) == 90 and len(emitted) == 240
    assert writes_of[0].pts_ms == 0
    latest = 0
    for write in emitted:
        # Frames as they come may cross by their network delays, never by seconds.
        assert write.pts_ms >= latest - 100, (write, latest)
        latest = max(latest, write.pts_ms)
