"""Encryption at rest for backup archives: a passphrase (or key file) and chunked AES-256-GCM.

An encrypted archive is a header, then chunks::

    header   MAGIC | salt (16) | log2 n, r, p (1 byte each) | nonce prefix (7) | verifier (32)
    chunk i  AES-256-GCM(key, nonce = prefix | i (4, big-endian) | final (1), aad = header)

The key is the first 32 bytes of scrypt(secret, salt) and the verifier the next 32: a wrong
passphrase is told apart from a damaged archive without decrypting anything, and the verifier
says nothing about the key (independent output of the KDF). Every chunk holds ``CHUNK`` bytes of
plaintext but the last, which has the final flag set: a reordered or dropped chunk fails its tag
(its index is in the nonce), a cut-off archive ends without a final chunk, and bytes after the
final one are refused. The header is each chunk's associated data, so it cannot be altered
either. This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015); the salt is
new for every archive, so a key never encrypts two archives.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = ["MAGIC", "DecryptingReader", "DecryptionError", "EncryptingWriter", "is_encrypted"]

MAGIC = b"consult-backup aes-256-gcm v1\n"
CHUNK = 1 << 20
TAG = 16
#: scrypt cost: 2**17 x 8 x 128 bytes = 128 MiB and about half a second, once per archive.
LOG2_N, R, P = 17, 8, 1
_PARAMS = struct.Struct(">16sBBB7s32s")
HEADER_SIZE = len(MAGIC) + _PARAMS.size
#: What the KDF may be asked to do by an archive's header (a hostile header cannot make it
#: allocate more than 1 GiB).
MAX_LOG2_N = 20


class DecryptionError(Exception):
    """A wrong passphrase, or an archive that was altered, cut short or is not one of ours."""


def is_encrypted(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _derive(secret: bytes, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    out = Scrypt(salt=salt, length=64, n=1 << log2_n, r=r, p=p).derive(secret)
    return out[:32], out[32:]


class EncryptingWriter:
    """A binary file-like sink: what is written goes to ``raw`` encrypted. ``close()`` writes
    the final chunk (it does not close ``raw``)."""

    def __init__(self, raw: BinaryIO, secret: bytes) -> None:
        salt, prefix = os.urandom(16), os.urandom(7)
        key, verifier = _derive(secret, salt, LOG2_N, R, P)
        self._header = MAGIC + _PARAMS.pack(salt, LOG2_N, R, P, prefix, verifier)
        self._aead = AESGCM(key)
        self._prefix = prefix
        self._raw = raw
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        raw.write(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        # Strictly more than a chunk: the last chunk (written at close) is never empty unless
        # the whole plaintext is.
        while len(self._buffer) > CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()

    def _seal(self, plaintext: bytes, final: bool) -> None:
        nonce = self._prefix + struct.pack(">IB", self._index, final)
        self._raw.write(self._aead.encrypt(nonce, plaintext, self._header))
        self._index += 1


class DecryptingReader:
    """A binary file-like source: the plaintext of the encrypted archive in ``raw``."""

    def __init__(self, raw: BinaryIO, secret: bytes) -> None:
        header = raw.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or not is_encrypted(header):
            raise DecryptionError("not an encrypted consult backup")
        salt, log2_n, r, p, prefix, verifier = _PARAMS.unpack(header[len(MAGIC) :])
        if not (1 <= log2_n <= MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16):
            raise DecryptionError("the archive's header is damaged")
        key, expected = _derive(secret, salt, log2_n, r, p)
        if not hmac.compare_digest(verifier, expected):
            raise DecryptionError("wrong passphrase or key file (or a damaged archive header)")
        self._aead = AESGCM(key)
        self._header = header
        self._prefix = prefix
        self._raw = raw
        self._index = 0
        self._pending = raw.read(CHUNK + TAG)
        self._plain = b""
        self._offset = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0:
            if self._offset == len(self._plain):
                if self._done:
                    break
                self._next_chunk()
                continue
            end = len(self._plain) if size < 0 else min(len(self._plain), self._offset + size)
            parts.append(self._plain[self._offset : end])
            size -= end - self._offset if size > 0 else 0
            self._offset = end
        return b"".join(parts)

    def _next_chunk(self) -> None:
        sealed = self._pending
        if len(sealed) < TAG:
            raise DecryptionError("the archive is cut short")
        following = self._raw.read(CHUNK + TAG) if len(sealed) == CHUNK + TAG else b""
        final = not following
        nonce = self._prefix + struct.pack(">IB", self._index, final)
        try:
            self._plain = self._aead.decrypt(nonce, sealed, self._header)
        except InvalidTag:
            raise DecryptionError(
                f"the archive is damaged or cut short (chunk {self._index} fails its check)"
            ) from None
        self._offset = 0
        self._index += 1
        self._pending = following
        self._done = final
