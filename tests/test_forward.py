"""The forwarding seam with real tracks: placeholder, switching, continuity, readers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consult.media.forward import Inlet, Outlet, Tap

from .media import PatternTrack, ToneTrack, audio_level, decode_pattern

pytestmark = pytest.mark.timeout(30)


async def test_outlet_without_source_sends_the_card_at_a_low_rate() -> None:
    outlet = Outlet("video", "Waiting for your stylist")
    loop = asyncio.get_running_loop()
    start = loop.time()
    frames = [await outlet.recv() for _ in range(5)]
    elapsed = loop.time() - start
    assert all(decode_pattern(f) is None for f in frames)
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert 0.3 < elapsed < 1.0  # ~10 fps
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts))
    outlet.stop()


async def test_placeholder_partner_placeholder_partner_is_one_continuous_stream() -> None:
    outlet = Outlet("video", "waiting")
    pts: list[int] = []
    seen: list[tuple[int, int] | None] = []

    async def take(n: int) -> None:
        for _ in range(n):
            frame = await outlet.recv()
            pts.append(frame.pts)
            seen.append(decode_pattern(frame))

    await take(3)
    first = PatternTrack(1)
    inlet = Inlet(first, "test")
    outlet.use(inlet)
    await take(10)
    outlet.use(None)
    await take(3)
    second = PatternTrack(2)
    outlet.use(Inlet(second, "test"))
    await take(10)

    assert pts == sorted(pts) and len(set(pts)) == len(pts), "timestamps must only go forward"
    sources = [s[0] if s else None for s in seen]
    assert sources[:3] == [None] * 3
    assert set(sources[3:13]) <= {1} and sources[3:13].count(1) >= 8
    assert sources[13:16] == [None] * 3
    assert sources[-5:] == [2] * 5
    outlet.stop()
    first.stop()
    second.stop()


async def test_outlet_falls_back_when_the_source_track_ends() -> None:
    track = PatternTrack(1)
    inlet = Inlet(track, "test")
    outlet = Outlet("video", "waiting")
    outlet.use(inlet)
    assert decode_pattern(await outlet.recv()) is not None
    track.stop()
    for _ in range(20):
        frame = await asyncio.wait_for(outlet.recv(), 2)
        if decode_pattern(frame) is None:
            break
    else:
        raise AssertionError("the outlet kept waiting for an ended source")
    assert not inlet.live
    assert outlet.source is None
    outlet.stop()


async def test_audio_outlet_silence_then_partner_with_continuous_timestamps() -> None:
    outlet = Outlet("audio", "waiting")
    silent = [await outlet.recv() for _ in range(5)]
    assert all(audio_level(f) == 0 for f in silent)
    assert [f.pts for f in silent] == [0, 960, 1920, 2880, 3840]
    tone = ToneTrack()
    outlet.use(Inlet(tone, "test"))
    loud = [await outlet.recv() for _ in range(5)]
    assert max(audio_level(f) for f in loud) > 1000
    pts = [f.pts for f in silent + loud]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    outlet.stop()
    tone.stop()


async def test_inlet_reads_its_track_with_nobody_attached() -> None:
    track = PatternTrack(1)
    inlet = Inlet(track, "test")
    await asyncio.sleep(0.5)
    assert inlet.frames >= 10  # read at the source's pace even with no consumer
    await inlet.close()
    await inlet.close()
    assert not inlet.live
    track.stop()


def test_tap_keeps_the_newest_frames() -> None:
    tap = Tap(2)
    for i in range(5):
        tap.put(i)  # type: ignore[arg-type]
    assert tap.dropped == 3
    assert tap._queue.get_nowait() == 3  # type: ignore[comparison-overlap]
    tap.close()
    assert tap.closed


async def test_a_stalled_partner_holds_the_last_picture_not_the_card() -> None:
    class Stalling(PatternTrack):
        """Three frames, then nothing (a camera turned off, a frozen network)."""

        async def recv(self) -> Any:
            if self.number >= 3:
                await asyncio.Event().wait()
            return await super().recv()

    track = Stalling(1)
    outlet = Outlet("video", "waiting")
    outlet.use(Inlet(track, "test"))
    frames = [await outlet.recv() for _ in range(3)]
    last_pts = frames[-1].pts
    held = await asyncio.wait_for(outlet.recv(), 3)
    assert decode_pattern(held) == (1, 2)  # the last picture, not the card
    assert held.pts > last_pts
    outlet.stop()
    track.stop()
