"""The salon's SMTP server: its URL, and handing it one message (aiosmtplib).

``smtp://user:pass@host:port`` (port 25 by default; STARTTLS if the server offers it),
``?starttls=1`` to require STARTTLS (port 587 usually), ``?starttls=0`` to never use it,
``smtps://`` for TLS from the first byte (port 465 by default); ``?timeout=20`` seconds per
step. The user name and password are percent-decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from .policy import Accepted, Refused, Result

__all__ = ["SmtpServer", "deliver"]

Tls = Literal["implicit", "starttls", "opportunistic", "none"]
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: Tls = "opportunistic"
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """ValueError says what is wrong with ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                "the SMTP URL is smtp://user:password@host:port or smtps://... (got"
                f" {parts.scheme or 'no'} scheme{'' if parts.hostname else ', no host'})"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("the SMTP URL's port is not a number") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise ValueError(f"unknown SMTP URL option {sorted(unknown)[0]!r}: starttls, timeout")
        tls: Tls = "implicit" if parts.scheme == "smtps" else "opportunistic"
        if "starttls" in query:
            if parts.scheme == "smtps" or query["starttls"] not in ("0", "1"):
                raise ValueError("starttls=1 or starttls=0, with smtp:// only")
            tls = "starttls" if query["starttls"] == "1" else "none"
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ValueError("the SMTP URL's timeout is a number of seconds") from None
        if timeout <= 0:
            raise ValueError("the SMTP URL's timeout must be positive")
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            timeout=timeout,
        )

    def __str__(self) -> str:
        """The server as logs show it: never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.host}:{self.port} ({self.tls} TLS)"


async def deliver(server: SmtpServer, sender: str, recipient: str, message: bytes) -> Result:
    """Hand ``message`` to the server: Accepted, or Refused with its reply code (None: no
    reply, e.g. the server is down or timed out)."""
    try:
        await aiosmtplib.send(
            message,
            sender=sender,
            recipients=[recipient],
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.tls == "implicit",
            start_tls={"starttls": True, "none": False}.get(server.tls),
            timeout=server.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        return Refused(first.code, first.message)
    except aiosmtplib.SMTPAuthenticationError as exc:
        # The salon's credentials, not the customer's address: retried once they are fixed.
        return Refused(None, f"authentication failed: {exc.code} {exc.message}")
    except aiosmtplib.SMTPResponseException as exc:
        return Refused(exc.code, exc.message)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Refused(None, str(exc) or type(exc).__name__)
    return Accepted()
