"""What a voice message, a video clip or a file sent in the chat may be, judged from its bytes.

The client's Content-Type and file name are never trusted: the first bytes say which container
or format it is (``sniff``), PyAV reads an audio or video container through (``probe``: its
streams, codecs and duration, from the packets themselves, since a browser's MediaRecorder
writes no duration into a WebM), and ``check`` decides, without I/O, whether that is an
acceptable ``kind`` within its limits. Only ``probe`` reads a file (synchronous: call it from
an executor).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import av

from .errors import CorruptMedia, NoAudio, PayloadTooLarge, TooLong, UnsupportedMedia

__all__ = [
    "KINDS",
    "Format",
    "Kind",
    "Limits",
    "Probe",
    "check",
    "extension",
    "is_media",
    "probe",
    "safe_name",
    "sniff",
]

Kind = Literal["voice", "video", "file"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: What the first bytes can say: three media containers, and the files a chat takes.
Format = Literal["webm", "ogg", "mp4", "pdf", "png", "jpeg", "gif", "webp"]
MEDIA_FORMATS: frozenset[Format] = frozenset({"webm", "ogg", "mp4"})
FILE_TYPES: dict[Format, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
EXTENSIONS: dict[Format, str] = {
    "webm": "webm", "ogg": "ogg", "mp4": "m4a", "pdf": "pdf", "png": "png", "jpeg": "jpg",
    "gif": "gif", "webp": "webp",
}  # fmt: skip

#: The codecs browsers record (MediaRecorder: Chromium WebM with Opus/VP8/VP9/H.264, Firefox
#: Ogg/WebM with Opus/VP8, Safari MP4 with AAC/H.264) and every browser plays back.
AUDIO_CODECS = frozenset({"opus", "vorbis", "aac", "mp3"})
VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})
#: An HEIF image is an ISO-BMFF file too; it is no video clip.
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                         b"avif", b"avis"})  # fmt: skip

#: A recorder stopped at its limit by a page timer ends a little after it: the last chunk and
#: the container's frame granularity. More than this is not a recording stopped at the limit.
DURATION_GRACE = 2.0

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    voice_seconds: float = 120.0
    voice_bytes: int = 10 * MB
    video_seconds: float = 60.0
    video_bytes: int = 50 * MB
    file_bytes: int = 25 * MB

    def max_bytes(self, kind: Kind) -> int:
        return {"voice": self.voice_bytes, "video": self.video_bytes, "file": self.file_bytes}[kind]

    def max_seconds(self, kind: Kind) -> float | None:
        return {"voice": self.voice_seconds, "video": self.video_seconds, "file": None}[kind]


def sniff(head: bytes) -> Format | None:
    """The format the first bytes (at least 16 of them) show, or None."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp" and head[8:12] not in HEIF_BRANDS and len(head) >= 12:
        return "mp4"
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def is_media(fmt: Format) -> bool:
    return fmt in MEDIA_FORMATS


@dataclass(frozen=True)
class Probe:
    """An audio or video container as PyAV reads it."""

    #: Codec names of the streams that carry packets.
    audio: tuple[str, ...] = ()
    video: tuple[str, ...] = ()
    #: Seconds from the first packet's start to the last one's end, over all streams.
    duration: float = 0.0
    width: int | None = None
    height: int | None = None
    #: Any other stream (subtitles, data): not something a chat message plays.
    other: tuple[str, ...] = field(default=())


#: FFmpeg's demuxer for each container: only the one the magic number names is ever tried, so
#: no other demuxer (a playlist or concat file that opens other files or URLs) reads an upload.
DEMUXERS: dict[Format, str] = {"webm": "matroska", "ogg": "ogg", "mp4": "mp4"}


def probe(path: Path, fmt: Format) -> Probe:
    """Read the ``fmt`` container at ``path`` through, packet by packet (nothing is decoded)."""
    try:
        with av.open(str(path), mode="r", format=DEMUXERS[fmt]) as container:
            streams = {s.index: s for s in container.streams}
            start: float | None = None
            end = 0.0
            seen: set[int] = set()
            for packet in container.demux():
                if packet.pts is None or packet.size == 0:
                    continue
                tb = packet.time_base
                at = float(packet.pts * tb)
                start = at if start is None else min(start, at)
                end = max(end, at + float((packet.duration or 0) * tb))
                seen.add(packet.stream.index)
            audio = tuple(
                s.codec_context.name for i, s in streams.items() if s.type == "audio" and i in seen
            )
            video_streams = [s for i, s in streams.items() if s.type == "video" and i in seen]
            other = tuple(
                s.type for i, s in streams.items() if s.type not in ("audio", "video") and i in seen
            )
            first = video_streams[0].codec_context if video_streams else None
            return Probe(
                audio=audio,
                video=tuple(s.codec_context.name for s in video_streams),
                duration=max(0.0, end - (start or 0.0)),
                width=first.width if isinstance(first, av.VideoCodecContext) else None,
                height=first.height if isinstance(first, av.VideoCodecContext) else None,
                other=other,
            )
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptMedia(f"The recording cannot be read: {exc}") from None


def check(kind: Kind, fmt: Format | None, size: int, found: Probe | None, limits: Limits) -> str:
    """The media type to serve ``kind`` with, given what its bytes are; raises the error to
    answer otherwise. ``found`` is the probe of a media container (None for other files)."""
    max_bytes = limits.max_bytes(kind)
    if size > max_bytes:
        raise PayloadTooLarge(f"A {kind} message is limited to {max_bytes // MB} MB.")
    if fmt is None:
        raise UnsupportedMedia(_accepted(kind))
    if kind == "file":
        if fmt not in FILE_TYPES:
            raise UnsupportedMedia(_accepted(kind))
        return FILE_TYPES[fmt]
    if not is_media(fmt) or found is None:
        raise UnsupportedMedia(_accepted(kind))
    if found.other or not set(found.audio) <= AUDIO_CODECS or not set(found.video) <= VIDEO_CODECS:
        codecs = ", ".join((*found.audio, *found.video, *found.other))
        raise UnsupportedMedia(f"{_accepted(kind)} This one holds {codecs}.")
    if kind == "voice":
        if not found.audio:
            raise NoAudio()
        if found.video:
            raise UnsupportedMedia("A voice message is sound only: send a video clip instead.")
    elif not found.video or fmt == "ogg":
        raise UnsupportedMedia(_accepted(kind))
    max_seconds = limits.max_seconds(kind)
    if max_seconds is not None and found.duration > max_seconds + DURATION_GRACE:
        raise TooLong(
            f"A {kind} message is limited to {max_seconds:g} s; this one lasts "
            f"{found.duration:.1f} s."
        )
    return f"{'audio' if kind == 'voice' else 'video'}/{fmt}"


def _accepted(kind: Kind) -> str:
    return {
        "voice": "A voice message is WebM, Ogg or MP4 audio (Opus, Vorbis, AAC or MP3).",
        "video": "A video clip is WebM or MP4 (VP8, VP9, H.264 or AV1).",
        "file": "A file is a PDF or an image (PNG, JPEG, GIF or WebP).",
    }[kind]


def extension(fmt: Format, kind: Kind) -> str:
    """The file extension its bytes call for (an MP4 clip is .mp4, an MP4 voice .m4a)."""
    return "mp4" if fmt == "mp4" and kind == "video" else EXTENSIONS[fmt]


_UNSAFE = re.compile(r"[^\w.\- ()]+")


def safe_name(name: str, fmt: Format, kind: Kind, fallback: str) -> str:
    """A filename to offer for download: the client's base name, with no path, quotes or
    control characters, at most 80 characters, ending in the extension its bytes call for."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = _UNSAFE.sub("_", stem).strip(" ._")[:80] or fallback
    return f"{stem}.{extension(fmt, kind)}"
