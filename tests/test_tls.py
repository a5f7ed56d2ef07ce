"""HTTPS: a certificate made for the machine's addresses, pinned by its printed fingerprint."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from consult import tls
from consult.cli import build_parser, settings_from
from consult.config import Settings
from consult.service import served_url

from .client import CallClient
from .conftest import token_of
from .process import free_port, start_serve

pytestmark = pytest.mark.timeout(90)

LAN = ipaddress.ip_address("192.168.1.20")


def sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(san.get_values_for_type(x509.DNSName)),
        {str(a) for a in san.get_values_for_type(x509.IPAddress)},
    )


def test_self_signed_names_the_machine_is_private_and_is_kept(tmp_path: Path) -> None:
    made = tls.self_signed(tmp_path, hostnames=["salon-pc"], addresses=[LAN])
    names, ips = sans(made.cert)
    assert names == {"localhost", "salon-pc"}
    assert ips == {"192.168.1.20", "127.0.0.1", "::1"}
    assert made.key.stat().st_mode & 0o077 == 0
    # Used again while it is valid and names every address...
    again = tls.self_signed(tmp_path, hostnames=["salon-pc"], addresses=[LAN])
    assert again.fingerprint == made.fingerprint
    # ...made anew when the machine has a new address, or the end is near.
    moved = tls.self_signed(
        tmp_path, hostnames=["salon-pc"], addresses=[ipaddress.ip_address("10.0.0.7")]
    )
    assert moved.fingerprint != made.fingerprint
    assert "10.0.0.7" in sans(moved.cert)[1]
    late = datetime.now(UTC) + tls.VALIDITY - timedelta(days=1)
    renewed = tls.self_signed(
        tmp_path, hostnames=["salon-pc"], addresses=[ipaddress.ip_address("10.0.0.7")], now=late
    )
    assert renewed.fingerprint != moved.fingerprint
    context = tls.server_context(renewed)  # the key matches the certificate
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_settings_from_flags_and_environment(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--tls-self-signed"])
    settings = settings_from(args)
    assert settings.tls_self_signed and settings.base_url == "https://127.0.0.1:8080"
    env = {"CONSULT_TLS_CERT": "/etc/c.pem", "CONSULT_TLS_KEY": "/etc/k.pem"}
    settings = Settings.from_env(env)
    assert (settings.tls_cert, settings.tls_key) == (Path("/etc/c.pem"), Path("/etc/k.pem"))
    assert Settings.from_env({}).base_url.startswith("http://")
    with pytest.raises(ValueError):
        Settings.from_env({"CONSULT_TLS_CERT": "/etc/c.pem"})
    with pytest.raises(ValueError):
        Settings.from_env(env, tls_self_signed=True)


def read_until(proc: subprocess.Popen[str], marker: str, lines: list[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return line
    raise AssertionError("".join(lines))


async def test_serve_over_https_with_a_pinned_self_signed_certificate(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = start_serve(data, port, extra=["--tls-self-signed"])
    lines: list[str] = []
    try:
        printed = await asyncio.to_thread(read_until, proc, "SHA-256 fingerprint:", lines)
        pin = printed.split("fingerprint:")[1].strip()
        await asyncio.to_thread(read_until, proc, "serving on https://", lines)
        printed_curl = await asyncio.to_thread(read_until, proc, "curl ", lines)
        # Keep reading, or a full pipe would stop the server.
        drain = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        drain.start()
        key = (data / "staff.key").read_text().strip()
        staff = {"Authorization": f"Bearer {key}"}
        cert = data / "tls-self-signed.crt"
        names, ips = sans(cert)
        assert {"localhost", "127.0.0.1", "::1"} <= names | ips
        assert {str(a) for a in tls.lan_addresses()} <= ips
        assert (data / "tls-self-signed.key").stat().st_mode & 0o077 == 0

        base = f"https://127.0.0.1:{port}"
        pinned = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(bytes.fromhex(pin.replace(":", ""))))
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(connector=pinned, cookie_jar=jar) as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            # http:// typed for the https:// address: sent there, not an empty reply.
            async with aiohttp.ClientSession() as plain, plain.get(
                f"http://127.0.0.1:{port}/healthz", allow_redirects=False
            ) as r:
                assert r.status == 307 and r.headers["Location"] == f"{base}/healthz"
            # The curl the service printed works as printed: it trusts this certificate.
            curl = await asyncio.to_thread(
                subprocess.run, ["sh", "-c", printed_curl], capture_output=True, text=True
            )
            assert curl.returncode == 0, curl.stderr
            assert json.loads(curl.stdout)["customer_link"].startswith(f"{base}/c/")
            async with http.post(f"{base}/api/session", json={"staff_key": key}) as r:
                assert r.status == 200
                cookie = r.headers["Set-Cookie"]
                assert "Secure" in cookie and "HttpOnly" in cookie
            async with http.post(
                f"{base}/api/consultations", json={"customer_name": "Jane"}, headers=staff
            ) as r:
                created = await r.json()
            assert created["customer_link"].startswith(f"{base}/c/")
            customer, stylist = (
                CallClient(http, f"wss://127.0.0.1:{port}/ws?token={token_of(link)}", role)
                for role, link in (
                    ("customer", created["customer_link"]),
                    ("stylist", created["stylist_link"]),
                )
            )
            try:
                await customer.connect()
                await customer.start_media()
                await stylist.connect()
                await stylist.start_media()
                await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 5)
                await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 5)
            finally:
                await customer.close()
                await stylist.close()

        # A client that does not know the certificate is refused: it is not a trusted one.
        async with aiohttp.ClientSession() as stranger:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await stranger.get(f"{base}/healthz")
        # Another pin (another server's certificate) is refused too.
        wrong = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(bytes(32)))
        async with aiohttp.ClientSession(connector=wrong) as impostor:
            with pytest.raises(aiohttp.ServerFingerprintMismatch):
                await impostor.get(f"{base}/healthz")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    await asyncio.to_thread(drain.join, 10)
    assert "Traceback" not in "".join(lines)
    # The same certificate at the next start: phones that accepted it need not again.
    proc = start_serve(data, free_port(), extra=["--tls-self-signed"])
    try:
        again = await asyncio.to_thread(read_until, proc, "SHA-256 fingerprint:", [])
        assert again.split("fingerprint:")[1].strip() == pin
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)


async def test_listening_on_every_address_links_name_the_lan_address(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start_serve(
        data, free_port(), extra=["--host", "0.0.0.0", "--tls-self-signed"],
        lan_address="192.168.77.5",
    )  # fmt: skip
    lines: list[str] = []
    try:
        await asyncio.to_thread(read_until, proc, "serving on", lines)
        await asyncio.to_thread(read_until, proc, "on this network", lines)
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
    out = "".join(lines)
    port = out.split("serving on https://192.168.77.5:")[1].split()[0]
    # The addresses for phones come right under the address it serves on.
    assert lines[-2].startswith("consult is serving on ")
    assert f"on this network: https://192.168.77.5:{port}" in out
    # The certificate names the LAN address, and links (consult create) use it.
    assert "192.168.77.5" in sans(data / "tls-self-signed.crt")[1]
    assert served_url(data) == f"https://192.168.77.5:{port}"


async def test_serve_with_the_salons_own_certificate(tmp_path: Path) -> None:
    own = tls.self_signed(tmp_path / "pki", hostnames=["salon.example"], addresses=[LAN])
    port = free_port()
    proc = start_serve(
        tmp_path / "data", port, extra=["--tls-cert", str(own.cert), "--tls-key", str(own.key)]
    )
    try:
        printed = await asyncio.to_thread(read_until, proc, "SHA-256 fingerprint:", [])
        assert printed.split("fingerprint:")[1].strip() == own.fingerprint
        await asyncio.to_thread(read_until, proc, "serving on https://", [])
        pin = aiohttp.Fingerprint(bytes.fromhex(own.fingerprint.replace(":", "")))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pin)) as http:
            for _ in range(100):
                try:
                    async with http.get(f"https://127.0.0.1:{port}/healthz") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("never served")
        assert not (tmp_path / "data" / "tls-self-signed.crt").exists()
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
