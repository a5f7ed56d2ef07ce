"""Staff passwords: argon2id (argon2-cffi's defaults, RFC 9106's low-memory choice).

Hashing takes tens of milliseconds of a core on purpose; it runs in a thread so the calls'
media on the event loop do not wait for it. A sign-in with an unknown email verifies against a
dummy hash, so it takes as long as a wrong password: the answer's time does not tell which
addresses have accounts.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "hash_password", "verify_nothing", "verify_password"]

MIN_PASSWORD = 10
MAX_PASSWORD = 256

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("consult: no such account")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(encoded: str, password: str) -> bool:
    try:
        return _hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(encoded: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, encoded, password)


async def verify_nothing(password: str) -> None:
    """As long as ``verify_password`` takes, for an email with no account."""
    await asyncio.to_thread(_verify, _dummy_hash(), password)
