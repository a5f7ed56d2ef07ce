"""Session description checks and edits that aiortc does not do for us."""

from __future__ import annotations

import re

from ..config import Bitrates
from ..errors import InvalidSdp

__all__ = ["MAX_MEDIA_SECTIONS", "add_video_bitrates", "check_offer"]

MAX_MEDIA_SECTIONS = 3
#: Codecs whose encoder in the browser honours x-google-*-bitrate (not rtx, red, ulpfec).
_VIDEO_CODECS = {"vp8", "vp9", "h264", "av1", "h265"}
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([\w-]+)/", re.IGNORECASE)
_FMTP = re.compile(r"^a=fmtp:(\d+) ?(.*)$")


def check_offer(sdp: str, *, max_bytes: int) -> None:
    """Reject offers we will not answer before aiortc parses them."""
    if len(sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidSdp(f"The offer is larger than {max_bytes} bytes.")
    if not sdp.startswith("v=0"):
        raise InvalidSdp("The offer is not a session description.")
    kinds = [line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")]
    if not kinds:
        raise InvalidSdp("The offer has no media.")
    if len(kinds) > MAX_MEDIA_SECTIONS:
        raise InvalidSdp(f"The offer has more than {MAX_MEDIA_SECTIONS} media sections.")
    if "video" not in kinds:
        raise InvalidSdp("The offer has no video.")
    for kind in ("audio", "video"):
        if kinds.count(kind) > 1:
            raise InvalidSdp(f"The offer has more than one {kind} section.")
    if any(kind not in ("audio", "video", "application") for kind in kinds):
        raise InvalidSdp("The offer has an unsupported media section.")


def add_video_bitrates(sdp: str, bitrates: Bitrates) -> str:
    """Add x-google-{start,min,max}-bitrate to each video codec's fmtp in ``sdp``.

    The browser reads these from the answer and starts its video sender at ``start`` instead of
    ~300 kbps, which otherwise makes it scale a 720p camera down for many seconds.
    """
    params = (
        f"x-google-start-bitrate={bitrates.start};"
        f"x-google-min-bitrate={bitrates.min};"
        f"x-google-max-bitrate={bitrates.max}"
    )
    eol = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        out.extend(_edit_section(section, params) if _is_video(section) else section)
        section.clear()

    for line in sdp.split(eol):
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    return eol.join(out)


def _is_video(section: list[str]) -> bool:
    return bool(section) and section[0].startswith("m=video")


def _edit_section(section: list[str], params: str) -> list[str]:
    codecs = {}
    for line in section:
        match = _RTPMAP.match(line)
        if match and match.group(2).lower() in _VIDEO_CODECS:
            codecs[match.group(1)] = match.group(0)
    edited: list[str] = []
    with_fmtp: set[str] = set()
    for line in section:
        match = _FMTP.match(line)
        if match and match.group(1) in codecs:
            pt, existing = match.groups()
            kept = ";".join(p for p in existing.split(";") if p and "x-google-" not in p)
            line = f"a=fmtp:{pt} {kept + ';' if kept else ''}{params}"
            with_fmtp.add(pt)
        edited.append(line)
    # Codecs without an fmtp line (aiortc writes none for VP8) get one after their rtpmap.
    result: list[str] = []
    for line in edited:
        result.append(line)
        match = _RTPMAP.match(line)
        if match and match.group(1) in codecs and match.group(1) not in with_fmtp:
            result.append(f"a=fmtp:{match.group(1)} {params}")
    return result
