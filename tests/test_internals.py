"""The one place we rely on aioice/aiortc internals: fail loudly if they move."""

from __future__ import annotations

import asyncio

import aioice.ice
from aioice import Connection
from aiortc import RTCConfiguration, RTCPeerConnection

from consult.media import internals

from .media import ToneTrack


def test_aioice_and_aiortc_still_have_what_we_use() -> None:
    internals.check()


def test_consent_expires_within_the_promised_bound() -> None:
    internals.install()
    assert aioice.ice.CONSENT_INTERVAL == internals.CONSENT_INTERVAL
    assert aioice.ice.CONSENT_FAILURES == internals.CONSENT_FAILURES
    assert aioice.ice.Connection.query_consent is internals._query_consent
    # Worst case: checks start within two MEDIA_SILENCE of the peer's last packet (it is
    # looked at that often), then every interval at its 1.2x, each check its 0.5 s timeout;
    # plus the 3 s the hub waits for a new offer, the partner is told within 15 s.
    worst = 2 * internals.MEDIA_SILENCE + internals.CONSENT_FAILURES * (
        1.2 * internals.CONSENT_INTERVAL + 0.5
    )
    assert worst + 3.0 < 15


async def test_host_addresses_are_offered_only_inside_the_block() -> None:
    internals.install()
    with internals.host_addresses(["127.0.0.1"]):
        conn = Connection(ice_controlling=True, components=1)
        await conn.gather_candidates()
    try:
        hosts = [c.host for c in conn.local_candidates]
        assert hosts == ["127.0.0.1"]
    finally:
        await conn.close()
    # Outside the block aioice's own choice applies again, which never includes loopback.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_calls_protect_media_with_aes_gcm() -> None:
    """An AEAD (AES-GCM) SRTP profile, about 30 % cheaper per packet than AES-CM with
    HMAC-SHA1 (scripts/bench_relay.py), is what aiortc offers first: it stays so."""
    internals.install()
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        a.addTrack(ToneTrack())
        with internals.host_addresses(["127.0.0.1"]):
            await a.setLocalDescription(await a.createOffer())
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        async with asyncio.timeout(20):
            while a.connectionState != "connected" or b.connectionState != "connected":
                await asyncio.sleep(0.05)
        for pc in (a, b):
            dtls = pc.getTransceivers()[0].sender.transport
            assert dtls._ssl.get_selected_srtp_profile().startswith(b"SRTP_AEAD_AES_")
    finally:
        await a.close()
        await b.close()
