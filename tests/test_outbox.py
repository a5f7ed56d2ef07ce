"""consult/media/outbox.py: which datagrams share a GSO send (pure, property-tested), and the
outbox on real sockets: everything arrives, in order, in fewer system calls; where the kernel
refuses GSO, one datagram per call. In a call through the server: tests/on_uvloop."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.media.outbox import MAX_SEGMENTS, MAX_SEND, Outbox, runs

# --- runs -------------------------------------------------------------------------------------


def assert_valid(sizes: Sequence[int], spans: list[tuple[int, int]]) -> None:
    # In order, every datagram once.
    assert [i for start, end in spans for i in range(start, end)] == list(range(len(sizes)))
    for start, end in spans:
        run = sizes[start:end]
        # What UDP_SEGMENT takes: one size, the last may be shorter.
        assert all(size == run[0] for size in run[:-1])
        assert run[-1] <= run[0]
        assert len(run) <= MAX_SEGMENTS
        assert sum(run) <= MAX_SEND or len(run) == 1
    # Each run ends for a reason: the next could not have joined it.
    for (start, end), (following, _) in itertools.pairwise(spans):
        run, nxt = sizes[start:end], sizes[following]
        assert (
            run[-1] < run[0]
            or nxt > run[0]
            or len(run) == MAX_SEGMENTS
            or sum(run) + nxt > MAX_SEND
        )


@given(st.lists(st.sampled_from([1200, 1199, 1100, 700, 120, 98]), max_size=200))
def test_runs_are_what_gso_takes_and_as_long_as_they_can_be(sizes: list[int]) -> None:
    assert_valid(sizes, list(runs(sizes)))


@given(st.lists(st.integers(1, 65_000), max_size=80))
def test_runs_of_any_sizes(sizes: list[int]) -> None:
    assert_valid(sizes, list(runs(sizes)))


def test_a_frame_goes_in_one_send_and_audio_apart() -> None:
    frame = [1150] * 8 + [900]
    assert list(runs([*frame, 120, *frame])) == [(0, 9), (9, 10), (10, 19)]
    assert list(runs([1200] * 130)) == [(0, 54), (54, 108), (108, 130)]  # 65 000 bytes
    assert list(runs([100] * 130)) == [(0, 64), (64, 128), (128, 130)]
    assert list(runs([])) == []


# --- the outbox on sockets --------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


@pytest.fixture
async def sender() -> AsyncIterator[asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    yield transport
    transport.close()


def datagrams(sizes: Sequence[int]) -> list[bytes]:
    return [bytes([i % 256]) * size for i, size in enumerate(sizes)]


def received(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65_535) for _ in range(count)]


#: asm-generic/socket.h (Python's socket module does not name it).
SO_NO_CHECK = 11

SIZES = [1150] * 8 + [900, 120, 1150, 1150, 1150, 400, 120, 1200, 1200]


async def test_one_turns_datagrams_arrive_in_order_in_fewer_sends(
    sender: asyncio.DatagramTransport, receiver: socket.socket
) -> None:
    outbox = Outbox.of(sender, receiver.getsockname())
    sent = datagrams(SIZES)
    for data in sent:
        outbox.put(data)
    assert outbox.sends == 0  # nothing leaves before the turn ends
    await asyncio.sleep(0)
    assert received(receiver, len(sent)) == sent
    assert outbox.gso
    assert (outbox.datagrams, outbox.sends) == (len(sent), 5)
    outbox.put(b"alone")
    await asyncio.sleep(0)
    assert received(receiver, 1) == [b"alone"]
    assert outbox.sends == 6
    outbox.close()
    outbox.close()
    # The transport's own socket is untouched by closing the outbox's.
    sender.sendto(b"still", receiver.getsockname())
    assert received(receiver, 1) == [b"still"]


async def test_where_the_kernel_refuses_gso_each_datagram_goes_alone(
    sender: asyncio.DatagramTransport, receiver: socket.socket
) -> None:
    # A socket without UDP checksums: Linux refuses GSO on it (EINVAL).
    sender.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    outbox = Outbox.of(sender, receiver.getsockname())
    sent = datagrams(SIZES)
    for data in sent:
        outbox.put(data)
    await asyncio.sleep(0)
    assert received(receiver, len(sent)) == sent
    assert not outbox.gso
    assert (outbox.datagrams, outbox.sends) == (len(sent), len(sent))
    outbox.close()
