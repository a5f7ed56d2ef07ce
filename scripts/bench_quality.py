#!/usr/bin/env python3
"""The quality gate on every real hand photo and video frame we have, and its cost.

Prints, as Markdown tables (docs/stills.md, Quality gate, summarises them):

- every photo in tests/fixtures/hands, and its blurred, smeared, darkened and brightened
  copies: the measures and the verdict;
- every video in tests/fixtures/hands/videos: per label (sharp, soft, limit, unlabelled) the
  range of the edge width and the verdicts, as decoded from the file and after a round trip
  through VP8 at the bitrates a call uses (the stream still is a frame of the customer's VP8);
  ``--frames`` adds one line per frame;
- the time of one assessment at 720p and at 12 MP (CPU and wall, median of ``--repeat``).

    .venv/bin/python scripts/bench_quality.py [--frames] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import _venv  # noqa: F401  (first: runs this script with .venv's python)
import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.media.quality import Assessment, assess, frame_score, working_copy
from tests.fake_camera import load_photo
from tests.hand_media import LABELS, PHOTOS, VIDEO_FILES, labelled, read_frames

#: VP8 bitrates to replay the videos at: aiortc's start and its ceiling for the customer.
BITRATES = (500_000, 1_500_000)


def spoiled(image: np.ndarray) -> dict[str, np.ndarray]:
    """The copies tests/test_quality.py flags, at the working copy's scale."""
    scale = image.shape[0] / working_copy(image).shape[0]
    length = max(3, round(9 * scale))
    return {
        "original": image,
        "2 px blur": cv2.GaussianBlur(image, (0, 0), 2 * scale),
        "9 px smear": cv2.filter2D(image, -1, np.full((1, length), 1 / length, np.float32)),
        "x0.3 light": (image * 0.3).astype(np.uint8),
        "x1.9 light": np.clip(image.astype(np.float32) * 1.9, 0, 255).astype(np.uint8),
    }


def row(name: str, result: Assessment) -> str:
    return (
        f"| {name} | {result.edge_width:.2f} | {result.exposure:.2f} | {result.clipped:.3f} "
        f"| {result.glare:.4f} | {result.skin:.2f} | {', '.join(result.flags) or 'pass'} |"
    )


def photos() -> None:
    print("## Photos\n")
    print("| photo, copy | edge width (px) | exposure | near-clipped | glare | skin | verdict |")
    print("|---|---|---|---|---|---|---|")
    for path in PHOTOS:
        image = load_photo(path)
        for copy, spoilt in spoiled(image).items():
            print(row(f"{path.name} {copy}", assess(spoilt)))
    print()


def vp8_round_trip(frames: dict[int, np.ndarray], bitrate: int) -> dict[int, np.ndarray]:
    """The frames as a VP8 decoder in a call would give them, at ``bitrate``."""
    first = next(iter(frames.values()))
    height, width = first.shape[0] & ~1, first.shape[1] & ~1
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate, encoder.time_base = bitrate, Fraction(1, 25)
    encoder.framerate = Fraction(25)
    encoder.options = {"deadline": "realtime", "cpu-used": "4", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("vp8", "r")
    out: dict[int, np.ndarray] = {}
    numbers = sorted(frames)

    def drain(packets: Iterable[av.Packet]) -> None:
        for packet in packets:
            for decoded in decoder.decode(packet):
                out[numbers[len(out)]] = decoded.to_ndarray(format="bgr24")

    for pts, number in enumerate(numbers):
        frame = av.VideoFrame.from_ndarray(frames[number][:height, :width], format="bgr24")
        frame.pts = pts
        drain(encoder.encode(frame.reformat(format="yuv420p")))
    drain(encoder.encode(None))
    return out


def videos(per_frame: bool) -> None:
    print("## Videos\n")
    print("| video | as | label | frames | edge width (px) | verdicts |")
    print("|---|---|---|---|---|---|")
    lines = []
    for path in VIDEO_FILES:
        frames = read_frames(path)
        kinds = {i: kind for kind in ("sharp", "soft", "limit") for i in labelled(path.name, kind)}
        versions: list[tuple[str, dict[int, np.ndarray]]] = [("file", frames)]
        versions += [(f"VP8 {b // 1000} kb/s", vp8_round_trip(frames, b)) for b in BITRATES]
        for version, decoded in versions:
            results = {i: assess(frame) for i, frame in decoded.items()}
            for kind in ("sharp", "soft", "limit", "unlabelled"):
                numbers = [i for i in results if kinds.get(i, "unlabelled") == kind]
                if not numbers:
                    continue
                widths = [results[i].edge_width for i in numbers]
                verdicts: dict[str, int] = {}
                for i in numbers:
                    verdict = ", ".join(results[i].flags) or "pass"
                    verdicts[verdict] = verdicts.get(verdict, 0) + 1
                counted = ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
                print(
                    f"| {path.name} | {version} | {kind} | {len(numbers)} "
                    f"| {min(widths):.2f}-{max(widths):.2f} | {counted} |"
                )
            if per_frame and version == "file":
                lines += [
                    row(f"{path.name} #{i} ({kinds.get(i, '-')})", r) for i, r in results.items()
                ]
    if lines:
        print("\n| frame | edge width (px) | exposure | near-clipped | glare | skin | verdict |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(lines))
    print(f"\nLabels: tests/fixtures/hands/videos/labels.json ({len(LABELS)} videos).\n")


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of one call."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        call()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def timing(repeat: int) -> None:
    photo = load_photo(next(p for p in PHOTOS if "3000x4000" in p.name))
    focus_pull = next(v for v in VIDEO_FILES if "640x360" in v.name)
    frame = cv2.resize(read_frames(focus_pull, {180})[180], (1280, 720))
    print("## Time per assessment\n")
    print(f"Load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores.\n")
    print("| still | call | CPU ms (median) | wall ms (median) |")
    print("|---|---|---|---|")
    for name, image in (("1280x720", frame), (f"{photo.shape[1]}x{photo.shape[0]}", photo)):
        for call, function in (("assess", assess), ("frame_score", frame_score)):
            cpu, wall = timed(lambda f=function, i=image: f(i), repeat)  # type: ignore[misc]
            print(f"| {name} | {call} | {cpu:.1f} | {wall:.1f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", action="store_true", help="one line per video frame")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per case")
    args = parser.parse_args()
    photos()
    videos(args.frames)
    timing(args.repeat)


if __name__ == "__main__":
    main()
