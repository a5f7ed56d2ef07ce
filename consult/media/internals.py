"""The one place that reaches into aioice and aiortc internals (both pinned in pyproject.toml).

- aioice gathers host candidates from every interface but loopback and has no option to choose
  them: ``host_addresses()`` sets, for the calling task and the tasks it starts, the addresses
  to offer instead, through aioice's module-level ``get_host_addresses``.
- aiortc has no public way to ask a remote sender for a keyframe: ``request_keyframe()`` sends
  an RTCP PLI through the receiver's ``_send_rtcp_pli``.
- aioice ends a connection whose consent (RFC 7675) expired after ``CONSENT_FAILURES``
  unanswered checks ``CONSENT_INTERVAL`` seconds apart: 6 x 5 s, about 30 s for a participant
  whose network went while its websocket stayed up. ``install()`` sets 6 x 0.75 s: consent
  lost after 6 to 8.5 s (each unanswered check also waits its 0.5 s timeout), so with the
  hub's 3 s re-offer grace a partner is told within 15 s (measured: 10-11 s). More frequent
  checks, not fewer of them, and one check is a ~100-byte STUN request. The price: six
  unanswered in a row on a merely bad network (5 % loss each way: about once in 10 days of
  call; 10 %: once in 4 hours), which costs that participant a reconnect.

``check()`` (run at start-up and by tests/test_internals.py) fails loudly when a new version
moves any of this.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import aioice.ice
from aiortc import RTCRtpReceiver

__all__ = ["CONSENT_FAILURES", "CONSENT_INTERVAL", "check", "host_addresses", "install",
           "request_keyframe"]  # fmt: skip

#: Seconds between consent checks (randomised by aioice from 0.8 to 1.2 times), and how many
#: unanswered in a row end the connection.
CONSENT_INTERVAL = 0.75
CONSENT_FAILURES = 6

_offered: ContextVar[tuple[str, ...] | None] = ContextVar("consult_host_addresses", default=None)
_aioice_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    offered = _offered.get()
    if offered is None:
        return list(_aioice_get_host_addresses(use_ipv4, use_ipv6))
    return [a for a in offered if (use_ipv6 if ipaddress.ip_address(a).version == 6 else use_ipv4)]


def check() -> None:
    """Raise if aioice or aiortc no longer have what this module relies on."""
    gather = getattr(aioice.ice.Connection, "gather_candidates", None)
    if gather is None or "get_host_addresses(" not in inspect.getsource(gather):
        raise RuntimeError(
            "aioice.ice.Connection.gather_candidates no longer calls get_host_addresses(): "
            "consult/media/internals.py must be updated for this aioice version"
        )
    consent = getattr(aioice.ice.Connection, "query_consent", None)
    if (
        consent is None
        or not isinstance(getattr(aioice.ice, "CONSENT_INTERVAL", None), int | float)
        or not isinstance(getattr(aioice.ice, "CONSENT_FAILURES", None), int)
        or "CONSENT_INTERVAL" not in (source := inspect.getsource(consent))
        or "CONSENT_FAILURES" not in source
    ):
        raise RuntimeError(
            "aioice.ice.Connection.query_consent no longer reads CONSENT_INTERVAL and "
            "CONSENT_FAILURES: consult/media/internals.py must be updated for this aioice version"
        )
    pli = getattr(RTCRtpReceiver, "_send_rtcp_pli", None)
    if pli is None or list(inspect.signature(pli).parameters) != ["self", "media_ssrc"]:
        raise RuntimeError(
            "aiortc.RTCRtpReceiver._send_rtcp_pli(media_ssrc) is gone: "
            "consult/media/internals.py must be updated for this aiortc version"
        )


def install() -> None:
    """Route aioice's host address lookup through ``host_addresses()`` and shorten its consent
    expiry; safe to call again."""
    check()
    aioice.ice.get_host_addresses = _get_host_addresses
    # Typed int by aioice, which multiplies it by a float anyway.
    aioice.ice.CONSENT_INTERVAL = CONSENT_INTERVAL  # type: ignore[assignment]
    aioice.ice.CONSENT_FAILURES = CONSENT_FAILURES


@contextmanager
def host_addresses(addresses: Iterable[str]) -> Iterator[None]:
    """Offer exactly ``addresses`` as host candidates for peers gathered inside this block.

    An empty list keeps aioice's default (every interface but loopback).
    """
    offered = tuple(str(ipaddress.ip_address(a)) for a in addresses)
    install()
    token = _offered.set(offered or None)
    try:
        yield
    finally:
        _offered.reset(token)


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender of ``receiver``'s stream for a keyframe (RTCP PLI)."""
    sources = receiver.getSynchronizationSources()
    await asyncio.gather(*(receiver._send_rtcp_pli(source.source) for source in sources))
    return bool(sources)
