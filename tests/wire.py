"""Hooks on aiortc peers' wires for tests and benchmarks: what a test peer receives, sends, or
puts on the wire as is (to simulate loss and hostile packets). Not for the server: it has no
test hooks, and its own use of aiortc's internals is in consult/media/internals.py."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCDtlsTransport, RTCRtpReceiver
from aiortc.rtp import RtpPacket
from pylibsrtp import Session

__all__ = ["SrtpWire", "intercept_received", "intercept_sent", "send_raw", "srtp_wire"]


async def send_raw(transport: RTCDtlsTransport, data: bytes) -> None:
    """Put ``data`` (RTP or RTCP, unencrypted) on ``transport`` as is."""
    await transport._send_rtp(data)


def intercept_received(receiver: RTCRtpReceiver, keep: Callable[[RtpPacket], bool]) -> None:
    """Show each RTP packet ``receiver`` gets to ``keep`` first; False drops it."""
    original = receiver._handle_rtp_packet

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        if keep(packet):
            await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def intercept_sent(transport: RTCDtlsTransport, keep: Callable[[bytes], bool]) -> None:
    """Show each unencrypted RTP/RTCP packet sent on ``transport`` to ``keep`` first; False
    drops it (loss)."""
    original = transport._send_rtp

    async def send(data: bytes) -> None:
        if keep(data):
            await original(data)

    transport._send_rtp = send  # type: ignore[method-assign]


@dataclass
class SrtpWire:
    """A connected peer's media wire, for a load that sends and receives SRTP itself: the
    DTLS-negotiated SRTP sessions, the ICE pair's UDP socket (a duplicate of its descriptor)
    and its remote address, and the aioice protocol that reads that socket."""

    tx: Session
    rx: Session
    socket: socket.socket
    remote: tuple[str, int]
    protocol: asyncio.DatagramProtocol


def srtp_wire(transport: RTCDtlsTransport) -> SrtpWire:
    """The wire under ``transport`` (connected: DTLS done, an ICE pair nominated)."""
    pair = transport.transport._connection._nominated[1]
    fd = pair.protocol.transport.get_extra_info("socket").fileno()
    sock = socket.socket(fileno=os.dup(fd))
    sock.setblocking(False)
    return SrtpWire(
        transport._tx_srtp, transport._rx_srtp, sock, tuple(pair.remote_addr), pair.protocol
    )
