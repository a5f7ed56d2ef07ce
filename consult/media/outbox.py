"""What the packet path sends to one peer in one turn of the event loop, sent together.

A browser's pacer lets a video frame's packets leave close together, and the server forwards
each as it comes: one ``sendto`` system call per packet was the largest single cost left on
the packet path (docs/media.md). An ``Outbox`` holds the datagrams for one address until the
loop's turn ends, then sends them in as few calls as UDP GSO (Linux 4.18) allows: a run of
datagrams of one size, the last of which may be shorter, goes in one ``sendmsg`` and the
kernel (or the network card) cuts it into the datagrams again. Nothing waits for a timer:
the turn that brought the packets sends them. Where GSO is refused (an older kernel, a device
without checksum offload), every datagram goes on its own, as before.

``runs`` (which datagrams may share a call) is pure; ``Outbox`` is its adapter to a socket.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

__all__ = ["MAX_SEGMENTS", "MAX_SEND", "DatagramTransport", "Outbox", "runs"]

logger = logging.getLogger(__name__)

#: The kernel's limit of datagrams in one GSO send (UDP_MAX_SEGMENTS).
MAX_SEGMENTS = 64
#: The most bytes one GSO send carries: one UDP datagram's payload over IPv6 or IPv4.
MAX_SEND = 65_000
#: linux/udp.h; Python's socket module names it from 3.12 on.
_UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
_SEGMENT_SIZE = struct.Struct("=H")


def runs(sizes: Sequence[int]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each send of datagrams of ``sizes``, in their order: a run is
    datagrams of the first one's size, ended by a shorter one (which it takes) or a longer
    one (which starts the next), at most ``MAX_SEGMENTS`` and ``MAX_SEND`` bytes."""
    start, count = 0, len(sizes)
    while start < count:
        size = total = sizes[start]
        end = start + 1
        while end < count and end - start < MAX_SEGMENTS:
            following = sizes[end]
            if following > size or total + following > MAX_SEND:
                break
            end += 1
            total += following
            if following < size:
                break
        yield start, end
        start = end


class DatagramTransport(Protocol):
    """What the outbox uses of a datagram transport (asyncio's and uvloop's have it all;
    typeshed's ``DatagramTransport`` lacks the buffer size)."""

    def sendto(self, data: bytes, addr: Any = None, /) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def get_extra_info(self, name: str, default: Any = None, /) -> Any: ...


class Outbox:
    """Datagrams to ``address``, sent at the end of the loop's turn: a datagram alone through
    ``transport`` (which keeps what the socket cannot take yet, in order), a run in one GSO
    ``sendmsg`` on ``sock``, a ``dup`` of the transport's socket (uvloop's datagram transports
    have no ``sendmsg``), unless the transport still holds earlier ones. Closed with the
    transport it shares the port with."""

    def __init__(self, transport: DatagramTransport, sock: socket.socket, address: Any) -> None:
        self._transport = transport
        self._socket = sock
        self._address = address
        self._queue: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self.gso = True
        #: Datagrams put, and the system calls that sent them.
        self.datagrams = 0
        self.sends = 0

    @classmethod
    def of(cls, transport: DatagramTransport, address: Any) -> Outbox:
        """An outbox on ``transport`` and a ``dup`` of its socket."""
        fileno = transport.get_extra_info("socket").fileno()
        return cls(transport, socket.socket(fileno=socket.dup(fileno)), address)

    def put(self, data: bytes) -> None:
        if not self._queue:
            self._loop.call_soon(self._flush)
        self._queue.append(data)

    def close(self) -> None:
        """Safe to call twice; what is still queued is dropped, as the transport's would be."""
        self._queue.clear()
        self._socket.close()

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        self.datagrams += len(queue)
        if len(queue) == 1 or not self.gso:
            self._send(queue)
            return
        for start, end in runs([len(data) for data in queue]):
            if end - start == 1 or not self._send_run(queue[start:end]):
                self._send(queue[start:end])

    def _send(self, datagrams: list[bytes]) -> None:
        self.sends += len(datagrams)
        for data in datagrams:
            self._transport.sendto(data, self._address)

    def _send_run(self, run: list[bytes]) -> bool:
        """One GSO send; False if it must go datagram by datagram instead: behind what the
        transport holds, into a full socket buffer, or where GSO is refused (then for good)."""
        if self._transport.get_write_buffer_size() or self._socket.fileno() == -1:
            return False
        size = _SEGMENT_SIZE.pack(len(run[0]))
        try:
            self._socket.sendmsg(run, [(socket.SOL_UDP, _UDP_SEGMENT, size)], 0, self._address)
        except BlockingIOError:
            return False
        except OSError as error:
            if error.errno not in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                return True  # lost (no buffer, no route), as the transport loses such ones
            logger.info("UDP GSO refused (%s): one datagram per send from now", error)
            self.gso = False
            return False
        self.sends += 1
        return True
