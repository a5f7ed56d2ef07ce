"""The writer of a recording's file on its own thread: frames handed over in batches reach the
file whole and in order, ``close()`` hands over what is still batched, and a SIGKILL leaves a
file that plays up to what had been handed over a few seconds before."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import pytest

from consult.media.recorder import TrackFormat
from consult.recording.media_writer import BATCH_FRAMES, FSYNC_EVERY, FrameWriter

pytestmark = pytest.mark.timeout(60)

TRACKS = (TrackFormat("video", "vp8", 320, 240), TrackFormat("audio", "opus", rate=48000))


def frames(seconds: float) -> list[tuple[int, int, bytes, bool]]:
    """Video at 30 fps and audio every 20 ms, interleaved by time, each frame's bytes naming it
    (nothing is decoded: the muxer takes any bytes, but reads an Opus packet's length from its
    first byte: 0xFC is one 20 ms frame)."""
    out = []
    for n in range(int(seconds * 30)):
        out.append(
            (0, n * 1000 // 30, b"v%05d" % n + bytes(random.randrange(50, 3000)), n % 30 == 0)
        )
    for n in range(int(seconds * 50)):
        out.append((1, n * 20, b"\xfca%05d" % n + bytes(random.randrange(20, 120)), True))
    out.sort(key=lambda f: (f[1], f[0]))
    return out


def demux(path: Path) -> dict[int, list[tuple[int, bytes]]]:
    """Each track's packets as (pts in ms, bytes), in file order."""
    found: dict[int, list[tuple[int, bytes]]] = {0: [], 1: []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None and packet.time_base is not None:
                pts = round(float(packet.pts * packet.time_base) * 1000)
                found[packet.stream.index].append((pts, bytes(packet)))
    return found


async def test_batches_reach_the_file_whole_and_in_order(tmp_path: Path) -> None:
    """Batches of every size (one frame, a tick's, more than ``BATCH_FRAMES`` between two
    flushes), and the last batch handed over by ``close()`` alone."""
    rng = random.Random(18)
    sent = frames(12.0)
    writer = FrameWriter(tmp_path / "a.webm", "test")
    writer.open(TRACKS)
    sizes = [1, 1, 7, 40, BATCH_FRAMES * 2 + 3, 16, 1] + [rng.randrange(1, 60) for _ in range(8)]
    last = len(sent) - 10
    assert sum(sizes) < last
    i = 0
    for size in sizes:
        for track, pts, data, key in sent[i : i + size]:
            writer.write(track, pts, data, key)
        i += size
        writer.flush()
        writer.flush()  # an empty batch hands nothing over
    for track, pts, data, key in sent[i:last]:
        writer.write(track, pts, data, key)
    writer.flush()
    for track, pts, data, key in sent[last:]:
        writer.write(track, pts, data, key)  # not flushed: close() hands these over
    written = await writer.close()
    assert written is not None and written.frames == len(sent)
    assert await writer.close() is written  # safe twice
    found = demux(tmp_path / "a.webm")
    for track in (0, 1):
        assert found[track] == [(pts, data) for t, pts, data, _ in sent if t == track]


async def test_nothing_written_is_no_file(tmp_path: Path) -> None:
    writer = FrameWriter(tmp_path / "b.webm", "test")
    assert await writer.close() is None
    assert not (tmp_path / "b.webm").exists()


async def test_handed_over_frames_reach_the_disk_while_recording(tmp_path: Path) -> None:
    """What was flushed is on disk within a cluster and an fsync, the file still open."""
    path = tmp_path / "c.webm"
    writer = FrameWriter(path, "test")
    writer.open(TRACKS)
    for track, pts, data, key in frames(4.0):
        writer.write(track, pts, data, key)
    writer.flush()
    deadline = asyncio.get_running_loop().time() + 10 * FSYNC_EVERY
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        try:
            on_disk = demux(path)
        except (av.error.FFmpegError, OSError):
            continue
        if on_disk[0] and on_disk[0][-1][0] >= 2000:
            break
    else:
        pytest.fail("the flushed frames did not reach the file")
    await writer.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from consult.media.recorder import TrackFormat
    from consult.recording.media_writer import FrameWriter

    async def main() -> None:
        writer = FrameWriter(Path(sys.argv[1]), "child")
        video_track = TrackFormat("video", "vp8", 320, 240)
        writer.open((video_track, TrackFormat("audio", "opus", rate=48000)))
        start, video, audio = time.monotonic(), 0, 0
        while True:
            await asyncio.sleep(0.2)  # a tick of the recording's adapter
            now = round((time.monotonic() - start) * 1000)
            while video * 1000 // 30 <= now:
                writer.write(0, video * 1000 // 30, b"v%05d" % video + bytes(2000), video % 30 == 0)
                video += 1
            while audio * 20 <= now:
                writer.write(1, audio * 20, b"\\xfca%05d" % audio + bytes(80), True)
                audio += 1
            writer.flush()
            print(now, flush=True)

    asyncio.run(main())
    """
)


def test_a_sigkill_leaves_a_file_that_plays_up_to_the_last_seconds(tmp_path: Path) -> None:
    path = tmp_path / "d.webm"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        handed = 0
        while handed < 6000:
            line = child.stdout.readline()
            assert line, "the writing process ended"
            handed = int(line)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    found = demux(path)
    video = [pts for pts, _ in found[0]]
    audio = [pts for pts, _ in found[1]]
    # Behind what was handed over: the cluster being filled (1 s: a cluster is written once
    # complete), what libavformat buffers, and the thread's lag on a loaded machine.
    assert video[-1] >= handed - 3000, (video[-1], handed)
    assert audio[-1] >= handed - 3000, (audio[-1], handed)
    # Whole and in order up to there: every frame from the first one.
    assert video == [n * 1000 // 30 for n in range(len(video))]
    assert audio == [n * 20 for n in range(len(audio))]
