"""Headless Firefox ESR from Debian (/usr/bin/firefox-esr), driven over WebDriver BiDi.

Geckodriver cannot be installed here, and Playwright's own BiDi Firefox follows Nightly (it
sends ``emulation.setMediaFeaturesOverride``, which ESR 153 does not have), so the browser is
driven by ``puppeteer-core`` from npm, whose BiDi support is made with Mozilla and runs on
release Firefox. ``tests/firefox_driver/driver.mjs`` holds one browser and answers JSON lines
on its stdin; this module is its Python end (docs/pages.md, Tests).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .browser import PHONE, picture_spread

FIREFOX = "/usr/bin/firefox-esr"
DRIVER = Path(__file__).parent / "firefox_driver" / "driver.mjs"
TIMEOUT = 30.0  # a ceiling for a loaded machine, not a measure

PREFS: dict[str, Any] = {
    # A fake camera and microphone, no permission prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # A fake camera counts as capturing (as a real one would): without it Firefox gathers ICE
    # candidates on the default route's address only, and there is none in the tests' network
    # namespace (only the loopback).
    "media.navigator.permission.fake": True,
    # ICE on 127.0.0.1: loopback candidates are dropped, and host addresses hidden behind
    # mDNS names, unless these are set (the call never connects without them).
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    # Nothing leaves the machine. puppeteer's profile already turns off updates, safebrowsing,
    # health reports and the connectivity service; these are the rest.
    "network.captive-portal-service.enabled": False,
    "captivedetect.canonicalURL": "",
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "",
    "browser.ping-centre.telemetry": False,
    "browser.safebrowsing.update.enabled": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "security.OCSP.enabled": 0,
}


class FirefoxError(Exception):
    """The driver refused a request (its message carries the browser's reason)."""


class Firefox:
    """One headless Firefox ESR with a fresh profile."""

    def __init__(self, process: asyncio.subprocess.Process, version: str) -> None:
        self.version = version
        self._process = process
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._pages: dict[int, FirefoxPage] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, prefs: dict[str, Any] | None = None) -> Firefox:
        options = {"executablePath": FIREFOX, "prefs": {**PREFS, **(prefs or {})}}
        process = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            str(DRIVER),
            json.dumps(options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Firefox's own chatter (GL, sandbox) would bury the test's output.
            stderr=None if os.environ.get("CONSULT_FIREFOX_LOG") else asyncio.subprocess.DEVNULL,
            limit=64 * 1024 * 1024,  # screenshots come back as one line
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
        except TimeoutError:
            process.kill()
            raise
        first = json.loads(line) if line else {"event": "failed", "text": "no answer"}
        if first["event"] != "ready":
            await process.wait()
            raise FirefoxError(f"Firefox did not start: {first['text']}")
        return cls(process, first["text"])

    async def _read(self) -> None:
        assert self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message = json.loads(line)
            if "id" in message:
                future = self._pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(FirefoxError(message["error"]))
                else:
                    future.set_result(message["result"])
            elif page := self._pages.get(message.get("page", 0)):
                page.errors.append(f"{message['event']}: {message['text']}")
        for future in self._pending.values():
            future.set_exception(FirefoxError("the driver ended"))
        self._pending.clear()

    async def call(self, method: str, **params: Any) -> Any:
        assert self._process.stdin is not None
        id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[id] = future
        line = json.dumps({"id": id, "method": method, "params": params}) + "\n"
        self._process.stdin.write(line.encode())
        await self._process.stdin.drain()
        return await future

    async def new_page(self, url: str, viewport: dict[str, Any] | None = None) -> FirefoxPage:
        """A new tab at ``url``; ``viewport`` as puppeteer's (width, height, deviceScaleFactor,
        isMobile, hasTouch)."""
        id = await self.call("newPage", viewport=viewport or PHONE)
        page = self._pages[id] = FirefoxPage(self, id)
        await page.goto(url)
        return page

    async def close(self) -> None:
        if self._process.returncode is None and self._process.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self._process.stdin.write(b'{"method": "close"}\n')
                await self._process.stdin.drain()
                self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), 20)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        await self._reader


class FirefoxPage:
    """A tab. ``errors`` collects the page's uncaught errors and console errors."""

    def __init__(self, browser: Firefox, id: int) -> None:
        self.browser = browser
        self.id = id
        self.errors: list[str] = []

    async def _call(self, method: str, **params: Any) -> Any:
        return await self.browser.call(method, page=self.id, **params)

    async def goto(self, url: str) -> None:
        await self._call("goto", url=url)

    async def evaluate(self, function: str, *args: Any) -> Any:
        """The JSON result of the JavaScript function ``function`` called with ``args``."""
        return await self._call("evaluate", source=function, args=list(args))

    async def wait_for(self, function: str, *args: Any, timeout: float = TIMEOUT) -> None:
        """Until the JavaScript function ``function`` returns a true value."""
        await self._call(
            "waitForFunction", source=function, args=list(args), timeout=timeout * 1000
        )

    async def click(self, testid: str, timeout: float = TIMEOUT) -> None:
        await self._call("click", testid=testid, timeout=timeout * 1000)

    async def set_files(self, testid: str, *paths: Path | str, timeout: float = TIMEOUT) -> None:
        """Choose ``paths`` in the file input ``testid`` (BiDi ``input.setFiles``): a
        ``change`` event fires as when the user picks them, e.g. the native-photo input."""
        files = [str(p) for p in paths]
        await self._call("setFiles", testid=testid, paths=files, timeout=timeout * 1000)

    async def screenshot(self, testid: str | None = None, timeout: float = TIMEOUT) -> bytes:
        """A PNG of the page, or of the element ``testid`` once it is visible."""
        png = await self._call("screenshot", testid=testid, timeout=timeout * 1000)
        return base64.b64decode(png)

    async def set_viewport(self, viewport: dict[str, Any]) -> None:
        await self._call("setViewport", viewport=viewport)

    async def visible_detail(self, testid: str) -> float:
        """How much picture an element shows: the spread of its screenshot's pixels (a black
        or uniform video is near 0), as ``tests.browser.visible_detail``."""
        return picture_spread(await self.screenshot(testid))

    async def text(self, testid: str) -> str:
        text: str = await self.evaluate(
            "(id) => document.querySelector(`[data-testid=${id}]`)?.textContent ?? ''", testid
        )
        return text

    async def close(self) -> None:
        await self._call("closePage")


__all__ = ["FIREFOX", "PREFS", "Firefox", "FirefoxError", "FirefoxPage"]
