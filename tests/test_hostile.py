"""Hostile input, from hypothesis, at the real server: arbitrary messages on a live call's
websocket and arbitrary requests at every HTTP route. No 5xx, no dropped call, no error in
the log, no unhandled exception on the loop.

Hypothesis runs in a thread of its own (it has no asyncio support); each example is a
coroutine run on the test's loop, where the server and the call live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import cv2
import numpy as np
import pytest
import yarl
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consult.app import create_app
from consult.appkeys import AUTH_FAILURES
from consult.config import Settings
from consult.errors import ProtocolError
from consult.ratelimit import FailureLimiter
from consult.signaling.messages import Bye, Capture, Offer, parse_message

from .attachment_media import voice_webm
from .browser import artifact
from .calls import in_call
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of

pytestmark = [
    pytest.mark.timeout(120),
    # The server's loop (aioice's consent checks) uses random while hypothesis draws data in
    # its own thread; hypothesis takes that for a strategy using random.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module"),
]

WS_EXAMPLES = 200
#: Requests per route (each route has its own run, so none is left out).
HTTP_EXAMPLES = 16


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Hypothesis sends faster than a person: the message rate limit is not under test here.
    return make_settings(tmp_path, message_rate=100_000.0, message_burst=100_000)


@pytest.fixture
async def server(aiohttp_server: Callable[..., Any], settings: Settings) -> TestServer:
    app = create_app(settings)
    # Made-up credentials are wrong nearly every time: with the usual limit the address would
    # be refused after 20 and the rest would only test the limiter (tests/test_access.py does).
    app[AUTH_FAILURES] = FailureLimiter(limit=10**9)
    served: TestServer = await aiohttp_server(app)
    return served


class Trouble(logging.Handler):
    """Every ERROR record, and every exception the loop's handler is given."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.name}: {record.getMessage()}")

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen.append(f"loop: {context.get('message')} {context.get('exception')!r}")


@pytest.fixture
async def trouble() -> AsyncIterator[Trouble]:
    handler = Trouble()
    root = logging.getLogger()
    root.addHandler(handler)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(handler.loop_exception)
    try:
        yield handler
    finally:
        loop.set_exception_handler(previous)
        root.removeHandler(handler)


def run_examples(
    loop: asyncio.AbstractEventLoop, example: Callable[[Any], Coroutine[Any, Any, None]]
) -> Callable[[Any], None]:
    def run(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(example(value), loop).result(60)

    return run


def record(name: str, value: int) -> None:
    path = artifact("hostile-examples.json")
    counts = json.loads(path.read_text()) if path.exists() else {}
    counts[name] = value
    path.write_text(json.dumps(counts, indent=2))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(["type", "sdp", "text", "id", "seq", "swatch_id", "still"]) | st.text(
    max_size=8
)
TYPES = st.sampled_from(["offer", "chat", "read", "swatch", "welcome", "error"]) | st.text(
    max_size=12
)
SDP_LINES = st.sampled_from(
    [
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:111 opus/48000/2",
        "c=IN IP4 0.0.0.0",
        "a=setup:actpass",
        "a=mid:0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuv",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=sendrecv",
    ]
) | st.text(max_size=40)
WS_MESSAGES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(
        lambda kind, fields: json.dumps({**fields, "type": kind}),
        TYPES,
        st.dictionaries(FIELDS, JSON, max_size=4),
    ),
    st.builds(lambda value: json.dumps(value), JSON),
    st.builds(
        lambda lines: json.dumps({"type": "offer", "sdp": "v=0\r\n" + "\r\n".join(lines)}),
        st.lists(SDP_LINES, max_size=10),
    ),
    # Around the size limit (64 KiB; aiohttp's own, which closes, is 4 times that).
    st.builds(lambda n, c: json.dumps({"type": "chat", "text": c * n, "id": "x"},
                                      ensure_ascii=False),
              st.integers(20_000, 70_000), st.sampled_from(["x", "é", "\u2603"])),
)  # fmt: skip


def expected_code(data: str | bytes, max_bytes: int) -> str | None:
    """What the protocol says the server answers: the parser's error code, else none."""
    try:
        parse_message(data, "customer", max_bytes=max_bytes)
    except ProtocolError as exc:
        return exc.code
    return None


async def test_arbitrary_messages_on_a_live_call(
    clients: Any, consultation: dict[str, Any], settings: Settings, trouble: Trouble
) -> None:
    customer, stylist = await in_call(clients, consultation)
    assert customer.ws is not None
    ws = customer.ws
    sent = 0
    loop = asyncio.get_running_loop()

    async def example(data: str | bytes) -> None:
        nonlocal sent
        try:
            message = parse_message(data, "customer", max_bytes=settings.max_message_bytes)
        except ProtocolError:
            message = None
        if isinstance(message, Bye | Capture):
            return  # valid goodbyes and captures do what they say (tests/test_call.py, stills)
        sent += 1
        if isinstance(data, bytes):
            await ws.send_bytes(data)
        else:
            await ws.send_str(data)
        # A message that always gets an error naming it: everything sent before it has been
        # handled (one connection's messages are handled in order).
        marker = f"marker-{sent}"
        await customer.send({"type": marker})
        replies: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(20):
                while True:
                    reply = await customer.messages.get()
                    if reply["type"] == "error" and marker in reply["message"]:
                        break
                    replies.append(reply)
        except TimeoutError:
            raise AssertionError(
                f"no answer after {data!r:.300}: {replies}, {ws.close_code}"
            ) from None
        codes = [r["code"] for r in replies if r["type"] == "error"]
        want = expected_code(data, settings.max_message_bytes)
        if isinstance(message, Offer):
            assert codes in ([], ["invalid-sdp"]), (f"{data!r:.300}", replies)
        else:
            assert codes == ([want] if want else []), (f"{data!r:.300}", replies)
        assert not any(r["type"] == "peer" for r in replies), (f"{data!r:.300}", replies)
        assert not ws.closed, f"{data!r:.300}"

    @hypothesis_settings(
        max_examples=WS_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(WS_MESSAGES)
    def fuzz(data: str | bytes) -> None:
        run_examples(loop, example)(data)

    await asyncio.to_thread(fuzz)
    record("websocket_messages", sent)
    assert sent >= WS_EXAMPLES // 2

    # The call is still up both ways, and the partner never saw the customer leave.
    after = time.monotonic()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", since=after)) >= 5)
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", since=after)) >= 5)
    seen = []
    while not stylist.messages.empty():
        seen.append(stylist.messages.get_nowait())
    assert not any(m["type"] == "peer" for m in seen)
    assert trouble.seen == []


def png() -> bytes:
    ok, data = cv2.imencode(".png", np.full((8, 8, 3), 200, np.uint8))
    assert ok
    return bytes(data)


HEADER_TEXT = st.text(string.ascii_letters + string.digits + string.punctuation + " ", max_size=40)
BODY_FIELDS = st.sampled_from(
    ["customer_name", "customer_ref", "scheduled_at", "notes", "summary", "staff_key", "hours",
     "away_message", "timezone", "based_on", "x", "days", "due_at", "overdue_days", "lifting",
     "chipping", "comfort", "text", "kind"]
) | st.text(max_size=10)  # fmt: skip
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=400),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(BODY_FIELDS, JSON, max_size=5).map(lambda d: json.dumps(d).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.just(b"png"),  # replaced by a small real PNG
    st.just(b"voice"),  # replaced by a small real voice message (WebM/Opus)
    # What a media container's magic number starts, and then anything: PyAV reads it.
    st.tuples(
        st.sampled_from([b"\x1a\x45\xdf\xa3", b"OggS", b"\x00\x00\x00\x18ftypisom", b"%PDF-"]),
        st.binary(max_size=400),
    ).map(b"".join),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "image/png", "image/jpeg", "text/plain", "application/octet-stream",
     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
) | HEADER_TEXT  # fmt: skip
CREDENTIALS = st.sampled_from(
    ["none", "staff", "customer", "stylist", "other", "made-up", "customer-query", "staff-query"]
)
PATH_VALUES = {
    "id": st.sampled_from(["consultation", "still", "attachment", "other"])
    | st.text(min_size=1, max_size=20),
    "token": st.sampled_from(["customer", "stylist"]) | st.text(min_size=1, max_size=40),
    "prefix": st.sampled_from(["c", "s"]) | st.text(min_size=1, max_size=3),
    "checkin": st.sampled_from(["checkin", "other"]) | st.text(min_size=1, max_size=30),
}


async def test_arbitrary_requests_at_every_route(
    server: TestServer, http: aiohttp.ClientSession, staff: dict[str, str], trouble: Trouble
) -> None:
    mine = await create_consultation(http, staff)
    other = await create_consultation(http, staff, customer_name="Other")
    capture_png = png()
    # A still of "mine", through the API, so /api/stills/{id} has something to serve.
    async with http.post(
        f"/api/consultations/{mine['id']}/chat-photos",
        params={"id": "first"},
        data=capture_png,
        headers={**staff, "Content-Type": "image/png"},
    ) as r:
        assert r.status == 201, await r.text()
        still = (await r.json())["message"]["still"]["id"]
    voice = voice_webm(0.5)
    async with http.post(
        f"/api/consultations/{mine['id']}/attachments",
        params={"id": "second", "kind": "voice"},
        data=voice,
        headers=staff,
    ) as r:
        assert r.status == 201, await r.text()
        attachment = (await r.json())["message"]["attachment"]["id"]
    # A check-in of "mine", sent to the customer by the app's due-work runner (due long ago).
    async with http.post(
        f"/api/consultations/{mine['id']}/checkins",
        json={"due_at": "2020-01-01T10:00:00+00:00"},
        headers=staff,
    ) as r:
        assert r.status == 201, await r.text()
        checkin = (await r.json())["checkins"][0]["id"]
    world = {
        "checkin": checkin,
        "consultation": mine["id"],
        "other": other["id"],
        "still": still,
        "attachment": attachment,
        "customer": token_of(mine["customer_link"]),
        "stylist": token_of(mine["stylist_link"]),
        "other-token": token_of(other["customer_link"]),
    }
    # Every route the application has, so a new endpoint is covered without a change here.
    routes = sorted(
        {(route.method, route.resource.canonical) for route in server.app.router.routes()
         if route.resource is not None}
    )  # fmt: skip
    assert ("POST", "/api/consultations") in routes and ("GET", "/ws") in routes
    seen: dict[tuple[str, str], set[int]] = {route: set() for route in routes}
    base = str(server.make_url(""))
    loop = asyncio.get_running_loop()

    def fill(canonical: str, values: dict[str, str]) -> str:
        path = canonical
        for name, value in values.items():
            real = world.get(value, value) if value != "other-token" else value
            path = path.replace("{" + name + "}", quote(real, safe=""))
        return path

    requests = 0

    async def example(method: str, canonical: str, case: dict[str, Any]) -> None:
        nonlocal requests
        requests += 1
        path = fill(canonical, case["path"])
        if canonical == "/static":
            path += "/" + quote(case["static"], safe="/")
        headers = {name: value for name, value in case["headers"].items()}
        query = dict(case["query"])
        credential = case["credential"]
        secret = {
            "staff": STAFF_KEY, "customer": world["customer"], "stylist": world["stylist"],
            "other": world["other-token"], "made-up": case["made_up"],
        }  # fmt: skip
        if credential in secret:
            headers["Authorization"] = f"Bearer {secret[credential]}"
        elif credential.endswith("-query"):
            query["token"] = STAFF_KEY if credential == "staff-query" else world["customer"]
        body = {b"png": capture_png, b"voice": voice}.get(case["body"] or b"", case["body"])
        if body is not None:
            headers["Content-Type"] = case["content_type"]
        url = yarl.URL(base.rstrip("/") + path, encoded=True).update_query(query)
        async with http.request(method, url, data=body, headers=headers) as r:
            text = await r.read()
            seen[(method, canonical)].add(r.status)
            assert r.status < 500, (method, str(url), r.status, text[:300])
            api = path.startswith("/api/") or canonical in ("/metrics", "/healthz")
            if api and r.status >= 400 and method != "HEAD":
                assert r.content_type == "application/json", (method, str(url), text[:300])
                assert isinstance(json.loads(text)["error"]["code"], str)
            if canonical.endswith("/revoke-links") and r.status == 200:
                links = json.loads(text)
                if links["id"] == world["consultation"]:
                    world["customer"] = token_of(links["customer_link"])
                    world["stylist"] = token_of(links["stylist_link"])

    cases = st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries({n: s for n, s in PATH_VALUES.items()}),
            "static": st.sampled_from(["app.css", "js/call-session.js", "../consult/app.py"])
            | st.text(max_size=20),
            "query": st.dictionaries(
                st.sampled_from(["token", "capture", "id", "customer_ref", "download", "kind",
                                 "name", "view"])
                | st.text(max_size=8),
                st.sampled_from(["voice", "video", "file", "top", "cuticles"])
                | st.text(max_size=30),
                max_size=3,
            ),
            "headers": st.dictionaries(
                st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)
                | st.sampled_from(["Accept", "Origin", "Cookie", "Range", "If-None-Match"]),
                HEADER_TEXT,
                max_size=3,
            ),
            "credential": CREDENTIALS,
            "made_up": st.text(string.ascii_letters + string.digits + "-_", min_size=1,
                               max_size=60),
            "body": BODIES,
            "content_type": CONTENT_TYPES,
        }
    )  # fmt: skip

    @hypothesis_settings(
        max_examples=HTTP_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def fuzz(route: tuple[str, str], case: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(example(*route, case), loop).result(60)

    for route in routes:
        await asyncio.to_thread(fuzz, route)
    record("http_requests", requests)
    missed = [route for route, statuses in seen.items() if not statuses]
    assert not missed, f"routes never tried: {missed}"
    assert trouble.seen == []
    # The call page of a real link still works after all that (a new consultation's where the
    # fuzzer deleted this one: the staff key is the owner's, and may).
    async with http.get(f"/api/consultations/{world['consultation']}", headers=staff) as r:
        deleted = r.status == 404
    link = world["customer"]
    if deleted:
        link = token_of((await create_consultation(http, staff))["customer_link"])
    async with http.get(f"/c/{link}") as r:
        assert r.status == 200


async def test_a_range_a_still_cannot_serve_is_a_json_error(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    # Found by the test above: aiohttp's own 416 was empty and typed as the image.
    async with http.post(
        f"/api/consultations/{consultation['id']}/chat-photos",
        params={"id": "a"},
        data=png(),
        headers={**staff, "Content-Type": "image/png"},
    ) as r:
        still = (await r.json())["message"]["still"]
    url = f"/api/stills/{still['id']}"
    for bad in ("", "junk", "bytes=99999999-"):
        async with http.get(url, headers={**staff, "Range": bad}) as r:
            assert r.status == 416
            assert (await r.json())["error"]["code"] == "range-not-satisfiable"
    async with http.get(url, headers={**staff, "Range": "bytes=0-9"}) as r:
        assert r.status == 206 and len(await r.read()) == 10
    async with http.get(url, headers={**staff, "Range": "bytes=-5"}) as r:
        assert r.status == 206 and len(await r.read()) == 5


async def test_a_head_request_for_an_export_has_no_body(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    # Found by the test above: the ZIP went out after HEAD's headers, and the client read it
    # as the status line of the next response on the same connection.
    for _ in range(2):
        async with http.head(f"/api/consultations/{consultation['id']}/export", headers=staff) as r:
            assert r.status == 200 and int(r.headers["Content-Length"]) > 0
        async with http.get("/healthz") as r:
            assert r.status == 200


async def test_a_chat_photo_to_no_consultation_is_not_found(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    # Found by test_arbitrary_requests_at_every_route: staff may name any id, and one that is
    # no consultation's was a 500 (the capture's foreign key).
    async with http.post(
        "/api/consultations/no-such-consultation/chat-photos",
        params={"id": "a"},
        data=png(),
        headers={**staff, "Content-Type": "image/png"},
    ) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not-found"
