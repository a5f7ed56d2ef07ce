#!/usr/bin/env python3
"""The relay core's own cost per forwarded packet, without network, SRTP or aiortc.

What `scripts/bench_calls.py` measures is the whole server under a real load, and that drifts
with whatever else the machine runs; this is the part of it that is ours (renumbering,
key-frame gating, picture ids, the history), in CPU time, stable enough to compare two
versions of the code side by side. Also the SRTP profiles' cost per packet (pylibsrtp), as the
server protects every forwarded packet once and unprotects it once, and that cost through
pylibsrtp's methods against the fast path's own calls of its binding.

    scripts/bench_relay.py
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from consult.media.internals import _Srtp
from consult.media.packets import codec_key
from consult.media.relay import Codec, Relay, Rtp, parse_rtp

VP8 = codec_key("video/VP8", 90000, None, {})
PACKETS_PER_FRAME = 9  # 720p at 2.5 Mbps: ~10 kB a frame, ~1.1 kB a packet
PAYLOAD = 1100
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"


def stream(n: int) -> list[Rtp]:
    packets = []
    for i in range(n):
        frame, part = divmod(i, PACKETS_PER_FRAME)
        start, key = part == 0, frame % 60 == 0
        descriptor = bytes([0x90 if start else 0x80, 0x80]) + struct.pack("!H", 0x8000 | frame)
        tag = b"\x00\x00\x00\x9d\x01\x2a\x00\x05\xd0\x02" if key and start else b"\x01\x00\x00"
        payload = descriptor + tag + bytes(PAYLOAD - len(tag))
        packets.append(
            Rtp(100, int(part == PACKETS_PER_FRAME - 1), i & 0xFFFF, frame * 3000, payload)
        )
    return packets


def relay_us_per_packet(n: int = 50_000) -> float:
    best = float("inf")
    for _ in range(5):
        relay = Relay("video", (Codec(96, VP8, 97),), connected=True)
        relay.use("partner", 0.0)
        relay.next_action()
        packets = stream(n)
        start = time.process_time()
        now = 1.0
        for packet in packets:
            now += 0.0003
            relay.partner_packet("partner", 1234, VP8, packet, now)
            while relay.next_action() is not None:
                pass
        best = min(best, time.process_time() - start)
    return 1e6 * best / n


def srtp_us_per_packet(profile: int, key_bytes: int, n: int = 20_000) -> float:
    key = os.urandom(key_bytes)
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    packets = [
        struct.pack("!BBHII", 0x80, 96, i & 0xFFFF, i * 3000, 1234) + bytes(PAYLOAD)
        for i in range(n)
    ]
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for packet in packets:
            rx.unprotect(tx.protect(packet))
        best = min(best, time.process_time() - start)
        tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    return 1e6 * best / n


def srtp_path_us_per_packet(n: int = 20_000) -> dict[str, float]:
    """What the packet path pays for SRTP per forwarded packet (AES-256-GCM, as browsers and
    aiortc negotiate): one unprotect of what came and one protect of what goes, with the
    packet assembled from header, extension and payload (as ``Emission.send`` does), through
    pylibsrtp's ``Session`` methods and through the fast path's ``_Srtp``."""
    key = os.urandom(44)
    profile = Policy.SRTP_PROFILE_AEAD_AES_256_GCM
    header = [struct.pack("!BBHII", 0x90, 96, i & 0xFFFF, i * 3000, 1234) for i in range(n)]
    extension, payload = bytes(12), bytes(PAYLOAD)

    def sessions() -> tuple[Session, Session]:
        tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
        return tx, rx

    def pylibsrtp_methods() -> None:
        tx, rx = sessions()
        for h in header:
            rx.unprotect(tx.protect(h + extension + payload))

    def fast_path() -> None:
        tx, rx = (_Srtp(s) for s in sessions())
        for h in header:
            protected = tx.protect(h, extension, payload, 0)
            assert protected is not None and rx.unprotect(protected) is not None

    result = {}
    for name, run in (("pylibsrtp_Session", pylibsrtp_methods), ("fast_path", fast_path)):
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            run()
            best = min(best, time.process_time() - start)
        result[name] = round(1e6 * best / n, 2)
    return result


def header_parse_us_per_packet(n: int = 50_000) -> dict[str, float]:
    """A browser's 720p packet (mid, abs-send-time and audio level extensions, 1.1 kB)
    parsed by aiortc's ``RtpPacket.parse`` (what the server did for every packet) and by the
    fast path's ``relay.parse_rtp``."""
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL),
                RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME),
                RTCRtpHeaderExtensionParameters(id=4, uri=MID),
            ]
        )
    )
    packet = RtpPacket(96, 0, 1, 3000, 1234, bytes(PAYLOAD))
    packet.extensions.mid, packet.extensions.abs_send_time = "1", 0x123456
    packet.extensions.audio_level = (False, 30)
    data = packet.serialize(extensions)
    result = {}
    for name, parse in (
        ("aiortc_RtpPacket_parse", lambda: RtpPacket.parse(data, extensions)),
        ("parse_rtp", lambda: parse_rtp(data, 2, 1)),
    ):
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            for _ in range(n):
                parse()
            best = min(best, time.process_time() - start)
        result[name] = round(1e6 * best / n, 2)
    return result


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    result = {
        "relay_core_us_per_packet": round(relay_us_per_packet(), 2),
        "rtp_header_parse_us_per_packet": header_parse_us_per_packet(),
        "srtp_on_the_packet_path_us_per_packet": srtp_path_us_per_packet(),
        "srtp_protect_and_unprotect_us_per_packet": {
            "AES128_CM_SHA1_80": round(
                srtp_us_per_packet(Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30), 2
            ),
            "AEAD_AES_128_GCM": round(
                srtp_us_per_packet(Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28), 2
            ),
            "AEAD_AES_256_GCM": round(
                srtp_us_per_packet(Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44), 2
            ),
        },
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
