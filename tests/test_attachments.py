"""What a voice message, a clip or a file may be, judged from real bytes: consult/attachments.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.attachments import (
    DURATION_GRACE,
    KINDS,
    Kind,
    Limits,
    Probe,
    check,
    is_media,
    probe,
    safe_name,
    sniff,
)
from consult.errors import CorruptMedia, NoAudio, PayloadTooLarge, TooLong, UnsupportedMedia

from .attachment_media import EXE, image, pdf, recording

LIMITS = Limits()


def judge(
    tmp_path: Path, kind: Kind, data: bytes, limits: Limits = LIMITS
) -> tuple[str, Probe | None]:
    """What the server decides of ``data`` sent as ``kind``: the media type and the probe."""
    fmt = sniff(data[:16])
    found = None
    if fmt is not None and is_media(fmt) and kind != "file":
        path = tmp_path / "upload"
        path.write_bytes(data)
        found = probe(path, fmt)
    return check(kind, fmt, len(data), found, limits), found


# What each browser's MediaRecorder makes: Chromium WebM/Opus (and VP8), Firefox Ogg/Opus,
# Safari MP4 with AAC (and H.264).
@pytest.mark.parametrize(
    ("kind", "container", "audio", "video", "media_type"),
    [
        ("voice", "webm", "libopus", None, "audio/webm"),
        ("voice", "ogg", "libopus", None, "audio/ogg"),
        ("voice", "mp4", "aac", None, "audio/mp4"),
        ("video", "webm", "libopus", "libvpx", "video/webm"),
        ("video", "webm", None, "libvpx-vp9", "video/webm"),
        ("video", "mp4", "aac", "libx264", "video/mp4"),
    ],
)
def test_browser_recordings_are_accepted_with_their_measured_duration(
    tmp_path: Path,
    kind: Kind,
    container: str,
    audio: str | None,
    video: str | None,
    media_type: str,
) -> None:
    data = recording(container, 3.0, audio=audio, video=video)
    got, found = judge(tmp_path, kind, data)
    assert got == media_type
    assert found is not None and found.duration == pytest.approx(3.0, abs=0.1)
    if video:
        assert (found.width, found.height) == (64, 48)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (pdf(), "application/pdf"),
        (image(".png"), "image/png"),
        (image(".jpg"), "image/jpeg"),
        (image(".webp"), "image/webp"),
        (b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 20, "image/gif"),
    ],
)
def test_pdf_and_images_are_files(tmp_path: Path, data: bytes, media_type: str) -> None:
    assert judge(tmp_path, "file", data)[0] == media_type


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "data",
    [EXE, b"just some text, not a file anyone plays", b"\x00" * 64, b"<html><script>x</script>"],
    ids=["exe", "text", "zeros", "html"],
)
def test_anything_else_is_unsupported_whatever_it_is_called(
    tmp_path: Path, kind: Kind, data: bytes
) -> None:
    # The client's name and Content-Type never reach the decision: only the bytes do.
    with pytest.raises(UnsupportedMedia) as raised:
        judge(tmp_path, kind, data)
    assert raised.value.code == "unsupported-media" and raised.value.status == 415


def test_a_webm_with_only_video_is_no_voice_message(tmp_path: Path) -> None:
    with pytest.raises(NoAudio) as raised:
        judge(tmp_path, "voice", recording("webm", 1.0, audio=None, video="libvpx"))
    assert (raised.value.status, raised.value.code) == (415, "no-audio")


def test_kinds_do_not_stand_in_for_each_other(tmp_path: Path) -> None:
    clip = recording("webm", 1.0, audio="libopus", video="libvpx")
    voice = recording("ogg", 1.0)
    with pytest.raises(UnsupportedMedia):
        judge(tmp_path, "voice", clip)  # sound and picture: a clip, not a voice message
    with pytest.raises(UnsupportedMedia):
        judge(tmp_path, "video", voice)  # sound only
    with pytest.raises(UnsupportedMedia):
        judge(tmp_path, "file", clip)  # files are PDFs and images
    with pytest.raises(UnsupportedMedia):
        judge(tmp_path, "voice", pdf())


def test_a_codec_browsers_do_not_all_play_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia) as raised:
        judge(tmp_path, "video", recording("mp4", 1.0, audio="aac", video="mpeg4"))
    assert "mpeg4" in raised.value.message


def test_over_the_duration_limits(tmp_path: Path) -> None:
    voice = recording("webm", LIMITS.voice_seconds + DURATION_GRACE + 1)
    with pytest.raises(TooLong) as raised:
        judge(tmp_path, "voice", voice)
    assert (raised.value.status, raised.value.code) == (413, "too-long")
    clip = recording(
        "webm", LIMITS.video_seconds + DURATION_GRACE + 1, audio=None, video="libvpx", fps=2
    )
    with pytest.raises(TooLong):
        judge(tmp_path, "video", clip)
    # A recorder stopped by the page at the limit ends a little after it: still accepted.
    judge(tmp_path, "voice", recording("ogg", LIMITS.voice_seconds + 0.5))


def test_over_the_size_limits(tmp_path: Path) -> None:
    small = Limits(voice_bytes=10_000, video_bytes=10_000, file_bytes=1000)
    with pytest.raises(PayloadTooLarge) as raised:
        judge(tmp_path, "file", pdf(padding=2000), small)
    assert (raised.value.status, raised.value.code) == (413, "too-large")
    with pytest.raises(PayloadTooLarge):
        judge(tmp_path, "voice", recording("webm", 3.0), small)
    assert LIMITS.max_bytes("video") == 50 * 1024 * 1024
    assert LIMITS.max_bytes("file") == 25 * 1024 * 1024


def test_a_container_that_does_not_read_is_corrupt(tmp_path: Path) -> None:
    good = recording("webm", 1.0)
    for broken in (good[:40], good[:4] + bytes(range(256)) * 8):
        with pytest.raises((CorruptMedia, NoAudio)):
            judge(tmp_path, "voice", broken)
    with pytest.raises(CorruptMedia) as raised:
        judge(tmp_path, "voice", b"OggS" + b"\xff" * 500)
    assert raised.value.status == 400


def test_an_heif_image_is_not_taken_for_an_mp4() -> None:
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") is None
    assert sniff(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00") == "mp4"


@given(st.binary(max_size=64))
def test_sniffing_any_bytes_never_fails(head: bytes) -> None:
    fmt = sniff(head)
    assert fmt is None or head[:2] in (b"\x1a\x45", b"Og", b"%P", b"\x89P", b"\xff\xd8", b"GI",
                                       b"RI") or head[4:8] == b"ftyp"  # fmt: skip


@given(st.text(max_size=300), st.sampled_from(KINDS))
def test_a_download_name_is_always_safe(name: str, kind: Kind) -> None:
    safe = safe_name(name, "pdf", kind, fallback="file")
    assert safe.endswith(".pdf") and 5 <= len(safe) <= 84
    assert not any(c in safe for c in '/\\"\r\n\x00;') and not safe.startswith(".")
    assert all(c.isprintable() for c in safe)


def test_a_download_name_keeps_what_it_can() -> None:
    assert (
        safe_name("C:\\Users\\me\\指甲 design (2).PDF", "pdf", "file", "x") == "指甲 design (2).pdf"
    )
    assert safe_name("../../etc/passwd", "png", "file", "x") == "passwd.png"
    assert safe_name("invoice.pdf.exe", "pdf", "file", "x") == "invoice.pdf.pdf"
    assert safe_name("", "webm", "voice", "voice-1") == "voice-1.webm"
    assert safe_name("clip.mov", "mp4", "video", "x") == "clip.mp4"
