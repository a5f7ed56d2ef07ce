from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from consult.config import Bitrates
from consult.errors import InvalidSdp
from consult.media import internals
from consult.media.peer import ServerPeer
from consult.media.sdp import add_video_bitrates, check_offer

from .media import PatternTrack, ToneTrack

BROWSER_LIKE = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "",
    ]
)
PARAMS = "x-google-start-bitrate=3000;x-google-min-bitrate=1500;x-google-max-bitrate=8000"


def test_bitrates_go_on_video_codecs_only() -> None:
    out = add_video_bitrates(BROWSER_LIKE, Bitrates(3000, 1500, 8000))
    lines = out.split("\r\n")
    assert f"a=fmtp:96 {PARAMS}" in lines
    assert lines[lines.index("a=rtpmap:96 VP8/90000") + 1] == f"a=fmtp:96 {PARAMS}"
    assert (
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
        f"profile-level-id=42e01f;{PARAMS}" in lines
    )
    assert "a=fmtp:97 apt=96" in lines and "a=fmtp:103 apt=102" in lines
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in lines
    assert out.endswith("\r\n")


def test_adding_bitrates_twice_replaces_them() -> None:
    once = add_video_bitrates(BROWSER_LIKE, Bitrates(3000, 1500, 8000))
    twice = add_video_bitrates(once, Bitrates(2000, 1000, 4000))
    assert "x-google-start-bitrate=3000" not in twice
    assert twice.count("x-google-start-bitrate=2000") == 2


def test_bitrates_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Bitrates(start=1000, min=2000, max=8000)
    with pytest.raises(ValueError):
        Bitrates(start=1000, min=0, max=8000)


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        ("", "not a session"),
        ("garbage", "not a session"),
        ("v=0\r\ns=-\r\n", "no media"),
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "no video"),
        ("v=0\r\n" + "m=video 9 X 96\r\n" * 2, "more than one video"),
        ("v=0\r\n" + "m=video 9 X 96\r\nm=text 9 X 1\r\n", "unsupported"),
        ("v=0\r\n" + "m=audio 9 X 1\r\n" * 4, "more than 3"),
        ("v=0\r\nm=video 9 X 96\r\n" + "a=x\r\n" * 10_000, "larger than"),
    ],
)
def test_offers_we_will_not_answer(sdp: str, reason: str) -> None:
    with pytest.raises(InvalidSdp, match=reason):
        check_offer(sdp, max_bytes=32 * 1024)


async def test_a_real_answer_carries_the_bitrates() -> None:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTrack(ToneTrack())
    client.addTrack(PatternTrack(1))
    with internals.host_addresses(["127.0.0.1"]):
        await client.setLocalDescription(await client.createOffer())
    peer = ServerPeer(
        "customer",
        label="t",
        configuration=RTCConfiguration(iceServers=[]),
        media_addresses=("127.0.0.1",),
        bitrates=Bitrates(2500, 1200, 6000),
    )
    try:
        answer = await peer.answer(client.localDescription.sdp)
        video = answer[answer.index("m=video") :]
        audio = answer[answer.index("m=audio") : answer.index("m=video")]
        assert "x-google-start-bitrate=2500;x-google-min-bitrate=1200" in video
        assert "x-google" not in audio
        # Media is offered on the configured address only.
        candidates = [line for line in answer.splitlines() if line.startswith("a=candidate")]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
    finally:
        await peer.close()
        await peer.close()
        await client.close()
    assert peer.state == "closed"
