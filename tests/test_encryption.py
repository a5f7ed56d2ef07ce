"""The archive's encryption: round trips, and every way of altering it is refused."""

from __future__ import annotations

import io
import os

import pytest

from consult.recording.encryption import (
    CHUNK,
    HEADER_SIZE,
    TAG,
    DecryptingReader,
    DecryptionError,
    EncryptingWriter,
)


def seal(plain: bytes, secret: bytes = b"correct horse") -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, secret)
    for start in range(0, len(plain), 70_000):  # writes of any size
        writer.write(plain[start : start + 70_000])
    writer.close()
    writer.close()  # safe twice
    return out.getvalue()


def unseal(sealed: bytes, secret: bytes = b"correct horse", read: int = -1) -> bytes:
    reader = DecryptingReader(io.BytesIO(sealed), secret)
    if read < 0:
        return reader.read()
    parts = []
    while part := reader.read(read):
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize(
    ("size", "read"), [(0, -1), (1, 10), (CHUNK, -1), (CHUNK + 1, 10_000), (3 * CHUNK + 5, 70_001)]
)
def test_round_trip(size: int, read: int) -> None:
    plain = os.urandom(size)
    sealed = seal(plain)
    assert unseal(sealed, read=read) == plain
    assert size < 64 or plain[:64] not in sealed


def test_same_plaintext_twice_differs() -> None:
    plain = b"a" * 1000
    assert seal(plain) != seal(plain)  # a new salt and key every time


def test_wrong_passphrase_is_told_apart() -> None:
    with pytest.raises(DecryptionError, match="wrong passphrase"):
        unseal(seal(b"x" * 100), b"wrong")


SEALED = CHUNK + TAG


@pytest.fixture(scope="module")
def sealed() -> bytes:
    return seal(os.urandom(3 * CHUNK + 100))


def damaged(original: bytes, kind: str) -> bytes:
    sealed = bytearray(original)
    body = HEADER_SIZE
    if kind == "flipped":
        sealed[body + CHUNK // 2] ^= 0x01
    elif kind == "header":
        sealed[HEADER_SIZE - 40] ^= 0x01  # the nonce prefix: authenticated as associated data
    elif kind == "cut at a chunk":
        del sealed[body + 2 * SEALED :]
    elif kind == "cut inside a chunk":
        del sealed[-50:]
    elif kind == "reordered":
        first, second = body, body + SEALED
        sealed[first:second], sealed[second : second + SEALED] = (
            sealed[second : second + SEALED],
            sealed[first:second],
        )
    elif kind == "appended":
        sealed += b"more"
    elif kind == "last chunk dropped":
        del sealed[body + 3 * SEALED :]
    return bytes(sealed)


@pytest.mark.parametrize(
    "kind",
    [
        "flipped",
        "header",
        "cut at a chunk",
        "cut inside a chunk",
        "reordered",
        "appended",
        "last chunk dropped",
    ],
)
def test_any_alteration_is_refused(sealed: bytes, kind: str) -> None:
    with pytest.raises(DecryptionError):
        unseal(damaged(sealed, kind))
