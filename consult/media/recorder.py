"""One participant's side of a call recording, as a pure core: RTP in, a media file's frames out.

In the style of ``relay.Relay``: no I/O, no clock, no aiortc. The adapter
(``recording.ParticipantTape``) feeds it each received packet and RTCP sender report with
``now`` (the server's wall-clock time, seconds), and carries out the actions it takes from
``next_action()``: ask the participant for a key frame, open the file with its tracks, write a
frame, close the file. Nothing is decoded; frames are written as the participant's encoder made
them.

Per track (the participant's video and audio):

- sequence numbers are unwrapped to 64 bits and packets put back in order within a short
  window (``REORDER_WINDOW``: time for NACKs to repair a loss);
- a gap still open after the window is a loss: the video frame it cuts is dropped and nothing
  more is written until a key frame, which is asked for (``RequestKeyframe``), as it is at the
  start: each video track starts on a key frame;
- packets of one RTP timestamp make a frame (VP8: the descriptor removed; H.264: Annex B NAL
  units, aiortc's depacketiser); a frame is written only if it begins at a frame start and
  ends with the marker bit, all its packets there;
- times: an RTCP sender report ties the track's RTP clock to the sender's NTP clock (of the
  last ``REPORT_SPAN`` seconds' reports and arrivals, the one that puts the stream earliest). The
  participant's first report of either track gives the offset from the sender's clock to
  ours, the same for audio and video, so both tracks of a file keep the sender's own lip sync
  and the two participants' files share the server's time line (``origin``: when the recording
  began is zero in both). A track's frames wait for its first report (``REPORT_WAIT`` at most;
  then its first frame's arrival time anchors it), and the other track's frames wait with
  them: frames go to the file in time order across tracks (a file going back in time fails
  Chromium's decoder when a paused player resumes).

The file is opened once the tracks are known (a video key frame gives its size, audio its
first frame) or ``OPEN_WAIT`` after the first frame (a participant without a camera is
recorded as audio only). A new SSRC on a track (the page offered again) continues the track
from its next key frame; a VP8 key frame of another size (a camera switched) is written into
the same track: WebM allows it and decoders follow it. A track whose codec changes once the
file is open (a page that offered again with another video codec) cannot go on in this file:
its packets are refused and ``codec_changed`` tells the adapter to go on in new files.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from aiortc.codecs.h264 import h264_depayload

from .packets import CodecKey, is_keyframe_start, vp8_frame_data, vp8_keyframe_size
from .relay import Rtp

__all__ = [
    "KEYFRAME_RETRY",
    "OPEN_WAIT",
    "REORDER_WINDOW",
    "REPORT_WAIT",
    "CloseFile",
    "OpenFile",
    "Recorder",
    "RecorderAction",
    "RequestKeyframe",
    "TrackFormat",
    "WriteFrame",
    "unwrap",
]

Kind = Literal["audio", "video"]

#: How long a gap in sequence numbers may wait for its packet (a NACK's repair) before it is a loss.
REORDER_WINDOW = {"audio": 0.1, "video": 0.4}
#: Packets held at most per track while a gap waits (about 0.4 s of 2.5 Mbps video).
REORDER_PACKETS = 512
#: A track's frames wait this long for its first sender report before arrival times anchor it.
REPORT_WAIT = 3.0
#: After the first frame, how long the file waits for the other track before it opens without
#: it (a video track waits for its first key frame, asked for every ``KEYFRAME_RETRY``).
OPEN_WAIT = 5.0
#: The least time between two key-frame requests (each costs the participant a large frame).
KEYFRAME_RETRY = 0.5
#: Sender reports of the last this many seconds choose a track's anchor (clocks drift apart
#: slowly over longer times).
REPORT_SPAN = 10.0
#: Frames held per track before the file opens or while the report is awaited.
MAX_HELD_FRAMES = 600
#: Codecs written as they come, and what Matroska calls them.
RECORDABLE = {"vp8": "vp8", "h264": "h264", "opus": "opus"}


class RecorderAction:
    """What the core asks its adapter to do."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RequestKeyframe(RecorderAction):
    """Ask the participant's video sender for a key frame (RTCP PLI)."""


@dataclass(frozen=True, slots=True)
class TrackFormat:
    kind: Kind
    codec: str
    #: Video: the first key frame's size (0 where the bitstream does not say, H.264).
    width: int = 0
    height: int = 0
    #: Audio: the RTP clock, which for Opus is always 48000.
    rate: int = 0


@dataclass(frozen=True, slots=True)
class OpenFile(RecorderAction):
    """Create the file with these tracks, in this order (their indexes in ``WriteFrame``)."""

    tracks: tuple[TrackFormat, ...]


@dataclass(frozen=True, slots=True)
class WriteFrame(RecorderAction):
    """One encoded frame: ``pts_ms`` after the recording's origin, in order per track."""

    track: int
    pts_ms: int
    data: bytes
    key: bool


@dataclass(frozen=True, slots=True)
class CloseFile(RecorderAction):
    """The recording of this participant ended: finish the file (``empty``: nothing written)."""

    empty: bool


def unwrap(last: int | None, value: int, bits: int) -> int:
    """``value`` (``bits`` wide, wrapping) extended to the one nearest ``last``."""
    if last is None:
        return value
    modulus = 1 << bits
    delta = (value - last) % modulus
    if delta >= modulus // 2:
        delta -= modulus
    return last + delta


@dataclass(slots=True)
class _Frame:
    ext_ts: int
    arrival: float
    data: bytes
    key: bool
    #: The server time it was captured, once known from another source's clock.
    at: float | None = None


@dataclass(slots=True)
class _Track:
    kind: Kind
    codec: str
    clock: int
    ssrc: int
    #: Unwrapped sequence number expected next; None before the first packet.
    next_seq: int | None = None
    last_seq: int | None = None
    last_ts: int | None = None
    pending: dict[int, tuple[Rtp, float]] = field(default_factory=dict)
    gap_since: float | None = None
    #: The frame being assembled: its timestamp and parts; broken: a part is missing.
    frame_ts: int | None = None
    parts: list[bytes] = field(default_factory=list)
    frame_key: bool = False
    broken: bool = False
    awaiting_key: bool = True
    size: tuple[int, int] | None = None
    #: (unwrapped RTP time, server time) of the latest sender report, or of the first frame.
    anchor: tuple[int, float] | None = None
    anchored_by_report: bool = False
    #: What recent sender reports and arrivals say of the stream's times, the earliest per
    #: second: (when, (RTP time, server time), server time at RTP time 0).
    reports: deque[tuple[float, tuple[int, float], float]] = field(default_factory=deque)
    held: deque[_Frame] = field(default_factory=deque)
    first_frame_at: float | None = None
    index: int | None = None
    last_pts: int = -1
    frames: int = 0
    losses: int = 0


class Recorder:
    """One participant's file. ``origin``: the server's time when the recording began."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self._tracks: dict[Kind, _Track] = {}
        #: Our clock minus the participant's sender clock, from its first sender report.
        self._offset: float | None = None
        self._formats: tuple[TrackFormat, ...] | None = None
        self._early: dict[Kind, tuple[int, float, int]] = {}
        self._first_frame_at: float | None = None
        self._keyframe_at = float("-inf")
        self._actions: deque[RecorderAction] = deque()
        self._closed = False
        self.frames_written = 0
        #: Packets of a codec that cannot be recorded, or of another codec than the file's.
        self.refused = 0
        #: A track's packets came in another recordable codec than the file's: the recording
        #: must go on in new files (this core writes no more of that track).
        self.codec_changed = False

    @property
    def opened(self) -> bool:
        return self._formats is not None

    @property
    def losses(self) -> int:
        return sum(t.losses for t in self._tracks.values())

    def next_action(self) -> RecorderAction | None:
        return self._actions.popleft() if self._actions else None

    # --- events -------------------------------------------------------------------------------

    def packet(self, kind: Kind, ssrc: int, codec: CodecKey, rtp: Rtp, now: float) -> None:
        if self._closed:
            return
        name = RECORDABLE.get(codec.name)
        track = self._tracks.get(kind)
        if name is None or (track is not None and track.codec != name and self.opened):
            self.refused += 1
            self.codec_changed = self.codec_changed or name is not None
            return
        if track is None or track.ssrc != ssrc or track.codec != name:
            track = self._new_source(kind, ssrc, name, codec.clock_rate, track, now)
        seq = unwrap(track.last_seq, rtp.sequence_number, 16)
        track.last_seq = max(seq, track.last_seq) if track.last_seq is not None else seq
        if track.next_seq is None:
            track.next_seq = seq
        if seq < track.next_seq or seq in track.pending:
            return  # a duplicate, or later than its loss was declared
        track.pending[seq] = (rtp, now)
        self._drain(track, now)

    def sender_report(
        self, kind: Kind, ssrc: int, ntp: float, rtp_timestamp: int, now: float
    ) -> None:
        """A sender report of ``kind``'s stream: ``ntp`` the sender's clock (Unix seconds)."""
        if self._offset is None:
            self._offset = now - ntp
        track = self._tracks.get(kind)
        if self._closed:
            return
        if track is None or track.ssrc != ssrc:
            self._early[kind] = (ssrc, ntp, rtp_timestamp)  # before the stream's first packet
            return
        ext = unwrap(track.last_ts, rtp_timestamp, 32)
        track.anchored_by_report = True
        _offer(track, now, ext, ntp + self._offset)
        self._release(track, now)

    def tick(self, now: float) -> None:
        """Time passes: gaps become losses, waits end."""
        if self._closed:
            return
        for track in list(self._tracks.values()):
            self._drain(track, now)
            self._release(track, now)
        self._maybe_open(now)

    def stop(self, now: float) -> None:
        """The recording ends: what is complete is written, the file closed."""
        if self._closed:
            return
        for track in self._tracks.values():
            _anchor_now(track, now)
            self._release(track, now)
        self._maybe_open(now, force=True)
        self._closed = True
        self._actions.append(CloseFile(empty=self.frames_written == 0))

    # --- packets to frames --------------------------------------------------------------------

    def _new_source(
        self, kind: Kind, ssrc: int, codec: str, clock: int, old: _Track | None, now: float
    ) -> _Track:
        track = _Track(kind, codec, clock, ssrc)
        if old is not None:
            # The page offered again: its new sender starts new numbers and a new clock. The
            # old sender's frames not written yet keep their times by its clock.
            track.index, track.last_pts, track.size = old.index, old.last_pts, old.size
            track.frames, track.losses = old.frames, old.losses
            _anchor_now(old, now)
            for frame in old.held:
                frame.at = _time_of(old, frame)
            track.held = old.held
            track.first_frame_at = old.first_frame_at
        track.awaiting_key = kind == "video"
        early = self._early.pop(kind, None)
        if early is not None and early[0] == ssrc and self._offset is not None:
            track.anchored_by_report = True
            _offer(track, now, early[2], early[1] + self._offset)
        self._tracks[kind] = track
        return track

    def _drain(self, track: _Track, now: float) -> None:
        pending = track.pending
        while pending:
            assert track.next_seq is not None
            item = pending.pop(track.next_seq, None)
            if item is not None:
                track.next_seq += 1
                track.gap_since = None
                self._assemble(track, item[0], item[1], now)
                continue
            if track.gap_since is None:
                track.gap_since = now
            if (
                now - track.gap_since < REORDER_WINDOW[track.kind]
                and len(pending) < REORDER_PACKETS
            ):
                return
            # The NACKs did not bring it back: a loss.
            track.next_seq = min(pending)
            track.gap_since = None
            track.losses += 1
            if track.kind == "video":
                track.broken = True
                track.awaiting_key = True
                self._ask_keyframe(now)

    def _assemble(self, track: _Track, rtp: Rtp, arrival: float, now: float) -> None:
        last = track.last_ts
        if last is None and track.anchor is not None:
            last = track.anchor[0]  # a report came first: unwrap next to its time
        ext_ts = unwrap(last, rtp.timestamp, 32)
        track.last_ts = ext_ts if track.last_ts is None else max(track.last_ts, ext_ts)
        payload = rtp.payload
        if track.kind == "audio":
            _offer(track, now, ext_ts, arrival)
            if payload:
                self._frame(track, _Frame(ext_ts, arrival, payload, True), now)
            return
        if ext_ts != track.frame_ts:
            _offer(track, now, ext_ts, arrival)
            track.frame_ts = ext_ts
            track.parts = []
            track.broken = not _frame_start(track.codec, payload)
            track.frame_key = not track.broken and is_keyframe_start(track.codec, payload)
            if track.frame_key and track.codec == "vp8":
                track.size = vp8_keyframe_size(payload) or track.size
        if not track.broken and payload:
            data = _depacketise(track.codec, payload)
            if data is None:
                track.broken = True
            else:
                track.parts.append(data)
        if not rtp.marker:
            return
        complete = not track.broken and track.parts
        track.frame_ts = None
        if not complete:
            return
        if track.awaiting_key:
            if not track.frame_key:
                self._ask_keyframe(now)
                return
            track.awaiting_key = False
        data = b"".join(track.parts)
        track.parts = []
        self._frame(track, _Frame(ext_ts, arrival, data, track.frame_key), now)

    def _frame(self, track: _Track, frame: _Frame, now: float) -> None:
        if self._formats is not None and track.index is None:
            return  # a track that began after the file was opened: not in it
        if track.first_frame_at is None:
            track.first_frame_at = now
        if self._first_frame_at is None:
            self._first_frame_at = now
        if len(track.held) >= MAX_HELD_FRAMES:
            track.held.popleft()
        track.held.append(frame)
        self._release(track, now)
        self._maybe_open(now)

    def _ask_keyframe(self, now: float) -> None:
        if now - self._keyframe_at >= KEYFRAME_RETRY:
            self._keyframe_at = now
            self._actions.append(RequestKeyframe())

    # --- frames to the file -------------------------------------------------------------------

    def _release(self, track: _Track, now: float) -> None:
        """Write the held frames once they have a time and the file is open: ``track``'s, and
        the other track's that waited for them."""
        if track.held and not track.anchored_by_report:
            if now - track.held[0].arrival < REPORT_WAIT:
                return
            _anchor_now(track, now)  # no report came: arrival times alone
        tracks = [t for t in self._tracks.values() if t.index is not None]
        if any(t.held and not t.anchored_by_report for t in tracks):
            # The other track's frames have no time yet (its first report is late): written
            # after this one's, earlier frames would follow later ones in the file, and a
            # file going back in time fails Chromium's decoder once a paused player resumes.
            return
        # Both tracks' frames in time order (each track's own order kept).
        timed = heapq.merge(*(self._timed(t) for t in tracks), key=lambda w: w.pts_ms)
        self._actions.extend(timed)

    def _timed(self, track: _Track) -> list[WriteFrame]:
        """The track's held frames with their times in the file, taken from it."""
        written: list[WriteFrame] = []
        assert track.index is not None
        while track.held:
            frame = track.held.popleft()
            pts = round((_time_of(track, frame) - self.origin) * 1000)
            if track.kind == "audio" and (pts < 0 or pts <= track.last_pts):
                # Sound from before both agreed, or overlapping what is written: players
                # (Chromium) take overlapping audio badly, and a lost 20 ms is not heard.
                continue
            # Video is clamped instead: a frame dropped would break those that follow it.
            pts = max(pts, 0, track.last_pts + 1)
            track.last_pts = pts
            track.frames += 1
            self.frames_written += 1
            written.append(WriteFrame(track.index, pts, frame.data, frame.key))
        return written

    def _maybe_open(self, now: float, force: bool = False) -> None:
        if self._formats is not None or self._first_frame_at is None:
            return
        video = self._tracks.get("video")
        audio = self._tracks.get("audio")
        ready_video = video is not None and bool(video.held)
        ready_audio = audio is not None and bool(audio.held)
        waiting = now - self._first_frame_at < OPEN_WAIT
        if not (ready_video and ready_audio) and not force and waiting:
            return
        formats: list[TrackFormat] = []
        for track in (video, audio):
            if track is None or not track.held:
                continue
            track.index = len(formats)
            if track.kind == "video":
                width, height = track.size or (0, 0)
                formats.append(TrackFormat("video", track.codec, width, height))
            else:
                formats.append(TrackFormat("audio", track.codec, rate=track.clock))
        if not formats:
            return
        self._formats = tuple(formats)
        self._actions.append(OpenFile(self._formats))
        for track in (video, audio):
            if track is not None:
                self._release(track, now)


def _offer(track: _Track, now: float, ext_ts: int, at: float) -> None:
    """``ext_ts`` of the track was at server time ``at`` or before it (a sender report says it
    was then; a packet carrying it arrived then). Of what the last ``REPORT_SPAN`` seconds say,
    the earliest anchors the track once it has had a report: a sender that pairs its clock with
    the RTP time of its last packet sent (aiortc) is late by its sending delay in some reports,
    which the earliest arrival bounds; a browser's reports are exact, and no arrival beats them.
    """
    base = at - ext_ts / track.clock
    entries = track.reports
    if entries and now - entries[-1][0] < 1.0:
        if base < entries[-1][2]:
            entries[-1] = (entries[-1][0], (ext_ts, at), base)
    else:
        entries.append((now, (ext_ts, at), base))
    while len(entries) > 1 and now - entries[0][0] > REPORT_SPAN:
        entries.popleft()
    if track.anchored_by_report:
        track.anchor = min(entries, key=lambda e: e[2])[1]


def _anchor_now(track: _Track, now: float) -> None:
    """Anchor a track that had no report by what its arrivals say."""
    if not track.anchored_by_report and track.held:
        track.anchored_by_report = True
        first = track.held[0]
        _offer(track, now, first.ext_ts, first.arrival)


def _time_of(track: _Track, frame: _Frame) -> float:
    """When ``frame`` was captured, on the server's clock (the track must be anchored)."""
    if frame.at is not None:
        return frame.at
    assert track.anchor is not None
    anchor_ts, anchor_at = track.anchor
    return anchor_at + (frame.ext_ts - anchor_ts) / track.clock


def _frame_start(codec: str, payload: bytes) -> bool:
    """Whether a packet begins a frame: VP8's S bit in partition 0, H.264 anything but a
    non-first FU-A fragment."""
    if not payload:
        return False
    if codec == "vp8":
        return bool(payload[0] & 0x10) and not payload[0] & 0x07
    if codec == "h264":
        return payload[0] & 0x1F != 28 or (len(payload) > 1 and bool(payload[1] & 0x80))
    return True


def _depacketise(codec: str, payload: bytes) -> bytes | None:
    if codec == "vp8":
        return vp8_frame_data(payload)
    try:
        return h264_depayload(payload)
    except ValueError:
        return None
