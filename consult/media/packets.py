"""RTP at the packet level, in plain Python: what packet forwarding needs to know about payloads,
and how an outgoing stream keeps one continuous numbering whoever is its source.

Nothing here touches aiortc; ``internals.py`` does, ``forward.py`` wires the two together.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "NACK_WINDOW",
    "CodecKey",
    "Gaps",
    "History",
    "Renumber",
    "codec_key",
    "h264_keyframe_start",
    "h264_sps",
    "is_keyframe_start",
    "keyframe_test",
    "stream_format",
    "vp8_frame_data",
    "vp8_keyframe_size",
    "vp8_keyframe_start",
    "vp8_picture_id",
    "vp8_with_picture_id",
]

T = TypeVar("T")

#: Packets kept per outgoing stream to answer NACKs (about 1-2 s of 720p video).
HISTORY_SIZE = 512
#: How far back a receiver still asks for missing packets (aiortc's receivers: 128).
NACK_WINDOW = 128


def uint16_newer(a: int, b: int) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (RFC 1982 arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


# --- payloads ---------------------------------------------------------------------------------


def _vp8_descriptor_end(payload: bytes) -> int | None:
    """Where the VP8 payload header starts after the RFC 7741 descriptor (None: malformed)."""
    if not payload:
        return None
    pos = 1
    if payload[0] & 0x80:  # X: extension octet
        if len(payload) < 2:
            return None
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if len(payload) <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos if pos < len(payload) else None


def vp8_frame_data(payload: bytes) -> bytes | None:
    """The VP8 bitstream part of a packet (the descriptor removed), None if malformed."""
    pos = _vp8_descriptor_end(payload)
    return payload[pos:] if pos is not None else None


def vp8_keyframe_start(payload: bytes) -> bool:
    """The first packet of a VP8 key frame: S=1, partition 0, and the frame tag's P bit 0."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x07:
        return False
    pos = _vp8_descriptor_end(payload)
    return pos is not None and not payload[pos] & 0x01


def vp8_picture_id(payload: bytes) -> tuple[int, int] | None:
    """(picture id, its modulus: 128 or 32768), or None when the descriptor has none."""
    if len(payload) < 3 or not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    if payload[2] & 0x80:
        if len(payload) < 4:
            return None
        return ((payload[2] & 0x7F) << 8) | payload[3], 0x8000
    return payload[2], 0x80


def vp8_with_picture_id(payload: bytes, picture_id: int) -> bytes:
    """``payload`` with its descriptor's picture id replaced (same width)."""
    data = bytearray(payload)
    if data[2] & 0x80:
        data[2] = 0x80 | ((picture_id >> 8) & 0x7F)
        data[3] = picture_id & 0xFF
    else:
        data[2] = picture_id & 0x7F
    return bytes(data)


def h264_keyframe_start(payload: bytes) -> bool:
    """A packet that starts an H.264 key frame: SPS or IDR, alone, in a STAP-A or in the first
    fragment of an FU-A (RFC 6184)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: 16-bit size, NAL unit, ...
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0 or pos + 2 + size > len(payload):
                return False
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal == 28:  # FU-A: the start fragment of an IDR or SPS
        return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from the first packet of a VP8 key frame (RFC 6386 9.1), else None."""
    pos = _vp8_descriptor_end(payload)
    if pos is None or len(payload) < pos + 10 or payload[pos + 3 : pos + 6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(payload[pos + 6 : pos + 8], "little") & 0x3FFF
    height = int.from_bytes(payload[pos + 8 : pos + 10], "little") & 0x3FFF
    return width, height


def h264_sps(payload: bytes) -> bytes | None:
    """The SPS a packet carries (alone, in a STAP-A, or its FU-A start), else None."""
    if not payload:
        return None
    nal = payload[0] & 0x1F
    if nal == 7:
        return payload
    if nal == 24:
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0 or pos + 2 + size > len(payload):
                return None
            if payload[pos + 2] & 0x1F == 7:
                return payload[pos + 2 : pos + 2 + size]
            pos += 2 + size
        return None
    if nal == 28 and len(payload) > 1 and payload[1] & 0x80 and payload[1] & 0x1F == 7:
        return payload[2:]
    return None


def stream_format(codec_name: str, payload: bytes) -> object | None:
    """What a key frame says of the picture's format, to notice a change mid-stream (a camera
    switched): VP8's (width, height), H.264's SPS; None if this packet does not say."""
    name = codec_name.lower()
    if name == "vp8":
        return vp8_keyframe_size(payload)
    if name == "h264":
        return h264_sps(payload)
    return None


def _always(payload: bytes) -> bool:
    return True  # audio: every packet stands on its own


def keyframe_test(codec_name: str) -> Callable[[bytes], bool]:
    """Whether a packet of ``codec_name`` starts a key frame: the test itself, for a caller
    that asks for every packet of one codec."""
    name = codec_name.lower()
    if name == "vp8":
        return vp8_keyframe_start
    if name == "h264":
        return h264_keyframe_start
    return _always


def is_keyframe_start(codec_name: str, payload: bytes) -> bool:
    return keyframe_test(codec_name)(payload)


# --- codecs across two legs -------------------------------------------------------------------


@dataclass(frozen=True)
class CodecKey:
    """What must be equal for a packet of one leg to be understood on the other."""

    name: str
    clock_rate: int
    channels: int | None
    packetization_mode: str | None


def codec_key(
    mime_type: str, clock_rate: int, channels: int | None, parameters: Mapping[str, object]
) -> CodecKey:
    name = mime_type.split("/")[-1].lower()
    mode = str(parameters.get("packetization-mode", "0")) if name == "h264" else None
    return CodecKey(name, clock_rate, channels, mode)


# --- one outgoing stream ----------------------------------------------------------------------


class Renumber:
    """Sequence numbers, timestamps and VP8 picture ids of one outgoing stream.

    The stream is a series of segments, each from one source (our own encoder, or a partner's
    SSRC). A segment is started at a packet (a key frame's first, for video) and maps its
    source's numbers by fixed offsets, so the receiver sees each number go on by one and the
    timestamp by the wall-clock time that passed: placeholder -> partner -> placeholder ->
    rejoined partner is one stream. Late packets of an earlier segment are refused.
    """

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.seq = random.randrange(0x8000)  # below half: SRTP rollover-friendly, as aiortc
        self.ts = random.randrange(1 << 32)
        self.picture_id: int | None = None
        self.at: float | None = None  # when the newest packet was mapped
        self.source: object | None = None
        self.segments = 0
        self._first = 0
        self._seq_offset = 0
        self._ts_offset = 0
        self._pic_offset = 0

    def start(
        self, source: object, seq: int, ts: int, picture_id: int | None = None, now: float = 0.0
    ) -> None:
        now = now or time.monotonic()
        if self.at is None:
            out_seq, out_ts = self.seq, self.ts
        else:
            out_seq = (self.seq + 1) & 0xFFFF
            gap = max(1, int((now - self.at) * self.clock_rate))
            out_ts = (self.ts + gap) & 0xFFFFFFFF
        self._seq_offset = (out_seq - seq) & 0xFFFF
        self._ts_offset = (out_ts - ts) & 0xFFFFFFFF
        if picture_id is not None:
            next_pic = 0 if self.picture_id is None else self.picture_id + 1
            self._pic_offset = next_pic - picture_id
        self._first = seq
        self.source = source
        self.segments += 1
        # The segment's first packet defines "newest" even when it is behind the last one.
        self.seq = (out_seq - 1) & 0xFFFF
        self.at = now

    def map(self, seq: int, ts: int, now: float) -> tuple[int, int] | None:
        """Output (seq, ts) for a packet of the current segment; None if it came before it."""
        if seq != self._first and uint16_newer(self._first, seq):
            return None
        if ((seq - self._first) & 0xFFFF) > 0x4000:  # keep the window's start near
            self._first = (seq - 0x2000) & 0xFFFF
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        if uint16_newer(out_seq, self.seq):
            self.seq, self.ts, self.at = out_seq, out_ts, now
        return out_seq, out_ts

    def goes_back(self, seq: int, ts: int) -> bool:
        """Whether a packet after the newest (by sequence number) would go back in time: its
        source restarted its clock (aiortc does on replaceTrack), so the segment must too."""
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (ts + self._ts_offset) & 0xFFFFFFFF
        return uint16_newer(out_seq, self.seq) and 0 < ((self.ts - out_ts) & 0xFFFFFFFF) < 1 << 31

    def map_picture_id(self, picture_id: int, modulus: int) -> int:
        out = (picture_id + self._pic_offset) % modulus
        if self.picture_id is None or ((out - self.picture_id) % modulus) < modulus // 2:
            self.picture_id = out
        return out


class Gaps:
    """The sequence numbers of a received stream still missing, within the last
    ``NACK_WINDOW``: what aiortc's ``NackGenerator`` tracks (the same answers: tests/test_rtp.py),
    without its per-packet scan and its loop over a long gap, for a packet that comes in order
    costs one comparison."""

    __slots__ = ("max_seq", "missing")

    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.missing: set[int] = set()

    def add(self, seq: int) -> bool:
        """Note packet ``seq``; True if it opened a gap (a NACK is due)."""
        last = self.max_seq
        if last is None:
            self.max_seq = seq
            return False
        ahead = (seq - last) & 0xFFFF
        if ahead == 1:
            self.max_seq = seq
            if self.missing:
                self._truncate()
            return False
        if ahead == 0 or ahead >= 0x8000:  # late (a retransmission), or a duplicate
            self.missing.discard(seq)
            return False
        self.missing.update((last + s) & 0xFFFF for s in range(max(1, ahead - NACK_WINDOW), ahead))
        self.max_seq = seq
        self._truncate()
        return True

    def _truncate(self) -> None:
        assert self.max_seq is not None
        oldest = (self.max_seq - NACK_WINDOW) & 0xFFFF
        self.missing = {s for s in self.missing if not uint16_newer(oldest, s)}


class History(Generic[T]):
    """The last packets sent on a stream, by output sequence number, to answer NACKs."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self._size = size
        # Two lists, not a list of pairs: nothing is allocated per packet.
        self._seqs: list[int] = [-1] * size
        self._data: list[T | None] = [None] * size

    def add(self, seq: int, data: T) -> None:
        index = seq % self._size
        self._seqs[index] = seq
        self._data[index] = data

    def get(self, seq: int) -> T | None:
        index = seq % self._size
        return self._data[index] if self._seqs[index] == seq else None
