"""HTTPS: the salon's own certificate, or one made for this machine's LAN addresses.

Browsers give a page the camera only in a secure context (``https://`` or ``localhost``). A
salon trying the service on a phone over Wi-Fi has no certificate for a LAN address, so
``--tls-self-signed`` makes one: an ECDSA P-256 key and a certificate naming ``localhost``, the
host name and every address of the machine's interfaces. It is kept in the data folder and
used again while it is valid and still names every current address; its SHA-256 fingerprint is
printed, so whoever accepts the browser's warning can check it is this server's.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ifaddr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .config import Settings

__all__ = [
    "Certificate",
    "certificate_for",
    "fingerprint",
    "lan_addresses",
    "self_signed",
    "server_context",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: A certificate this close to its end is made again at start rather than used.
RENEW_BEFORE = timedelta(days=30)
VALIDITY = timedelta(days=397)  # the longest browsers accept for a server certificate


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    #: Of the certificate as it was read or made (the file may be replaced later).
    fingerprint: str

    @classmethod
    def load(cls, cert: Path, key: Path) -> Certificate:
        return cls(cert, key, fingerprint(x509.load_pem_x509_certificate(cert.read_bytes())))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER bytes, as browsers show it (``AB:CD:...``)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_for(settings: Settings) -> Certificate | None:
    """The certificate to serve with, made first if self-signed; None: plain HTTP."""
    if settings.tls_self_signed:
        return self_signed(settings.data_dir)
    if settings.tls_cert is not None and settings.tls_key is not None:
        return Certificate.load(settings.tls_cert, settings.tls_key)
    return None


def server_context(certificate: Certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


def lan_addresses() -> list[IpAddress]:
    """Every address of this machine's interfaces (IPv6 link-local ones left out: a URL
    cannot name them without a zone)."""
    found: list[IpAddress] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ipaddress.ip_address(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
            if address.is_link_local or address in found:
                continue
            found.append(address)
    return found


def self_signed(
    folder: Path,
    *,
    hostnames: Iterable[str] | None = None,
    addresses: Iterable[IpAddress] | None = None,
    now: datetime | None = None,
) -> Certificate:
    """The self-signed certificate in ``folder`` (``tls-self-signed.crt``/``.key``), made
    anew if there is none, it ends within ``RENEW_BEFORE``, or it does not name every one of
    ``hostnames`` and ``addresses`` (default: localhost, the host name, ``lan_addresses()``)."""
    now = now or datetime.now(UTC)
    names = sorted({"localhost", *(hostnames or [socket.gethostname()])} - {""})
    ips = list(dict.fromkeys(addresses if addresses is not None else lan_addresses()))
    loopback = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    ips += [a for a in loopback if a not in ips]
    cert_path, key_path = folder / "tls-self-signed.crt", folder / "tls-self-signed.key"
    if _still_good(cert_path, key_path, names, ips, now):
        return Certificate.load(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"consult on {names[-1]}")])
    san = [*(x509.DNSName(n) for n in names), *(x509.IPAddress(a) for a in ips)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    # The key first: a certificate on disk always has its key beside it.
    _write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Certificate(cert_path, key_path, fingerprint(cert))


def _still_good(
    cert_path: Path, key_path: Path, names: list[str], ips: list[IpAddress], now: datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    if key.public_key() != cert.public_key():
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_names = set(san.get_values_for_type(x509.DNSName))
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return set(names) <= have_names and set(ips) <= have_ips


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
