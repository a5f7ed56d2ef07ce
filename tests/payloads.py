"""RTP payloads made by hand for the packet-level tests: VP8 (RFC 7741) and H.264 (RFC 6184)."""

from __future__ import annotations

import struct

__all__ = ["h264_idr", "h264_slice", "h264_sps_stap", "vp8"]


def vp8(
    start: bool,
    keyframe: bool,
    picture_id: int | None = 1234,
    pid: int = 0,
    size: tuple[int, int] = (1280, 720),
    tail: bytes = bytes(20),
) -> bytes:
    """A VP8 packet: descriptor (15-bit picture id if given), then a frame tag; a key frame's
    start carries the start code and ``size``; ``tail`` ends the packet."""
    first = (0x80 if picture_id is not None else 0) | (0x10 if start else 0) | pid
    descriptor = bytes([first])
    if picture_id is not None:
        descriptor += bytes([0x80]) + struct.pack("!H", 0x8000 | picture_id)
    if keyframe and start:
        header = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", *size)
    else:
        header = bytes([0x00 if keyframe else 0x01, 0, 0])
    return descriptor + header + tail


def h264_sps_stap(sps: bytes, tail: bytes = b"") -> bytes:
    """A STAP-A with an SPS and a PPS, as a key frame's first packet."""
    pps = b"\x68\xce\x3c\x80"
    return b"\x78" + struct.pack("!H", len(sps)) + sps + struct.pack("!H", len(pps)) + pps + tail


def h264_idr(tail: bytes = b"") -> bytes:
    return b"\x65\x88" + tail


def h264_slice(tail: bytes = b"") -> bytes:
    return b"\x41\x9a" + tail
