"""Link tokens.

A token is 192 random bits. The store looks tokens up by their SHA-256 and keeps the token
itself only sealed (Fernet) with a key from the data folder, so a copy of the database alone
opens no consultation, while staff can still fetch a consultation's links again.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..keyfiles import read_or_create

__all__ = ["TokenSealer", "hash_token", "load_seal_key", "new_token"]

TOKEN_BYTES = 24


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenSealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            # Sealed under another key (the data folder's key was replaced): the link is lost,
            # not the consultation; staff revoke the links to get new ones.
            return None


def load_seal_key(data_dir: Path) -> bytes:
    """The sealing key, generated once and kept in the data folder."""
    return read_or_create(data_dir / "link-seal.key", Fernet.generate_key)
