"""``GET /metrics`` during a real call: media both ways, captures, errors by code."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .calls import in_call_with, png, upload
from .client import CallClient
from .conftest import token_of
from .fake_camera import HANDS, load_photo
from .media import PhotoTrack

pytestmark = pytest.mark.timeout(90)

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: aiohttp.ClientSession, staff: dict[str, str]) -> Series:
    async with http.get("/metrics", headers=staff) as r:
        assert r.status == 200
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_media_captures_and_errors_are_counted(
    clients: Any, consultation: dict[str, Any], http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    photo = load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg")
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(photo, 640, 480))
    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 10)
    first = await scrape(http, staff)

    # A capture: the stream still, and the customer's camera photo.
    await stylist.send({"type": "capture"})
    request = await customer.expect("capture-request")
    status, _ = await upload(
        http, request["upload_url"], token_of(consultation["customer_link"]), png(photo)
    )
    assert status == 201
    sources = {(await stylist.expect("still"))["still"]["source"] for _ in range(2)}
    assert sources == {"camera", "video"}
    # Errors, on the websocket and over HTTP.
    await customer.send("not json")
    assert (await customer.expect("error"))["code"] == "malformed"
    await customer.send({"type": "teleport"})
    assert (await customer.expect("error"))["code"] == "unknown-type"
    async with http.get("/api/consultations/nope", headers=staff) as r:
        assert r.status == 404
    # Receiver reports carry the round trip; give both sides' reports time to arrive.
    await asyncio.sleep(2)
    second = await scrape(http, staff)

    for role in ("customer", "stylist"):
        for direction in ("in", "out"):
            assert value(first, "consult_media_bytes_total", role=role, direction=direction) > 0
            assert value(
                second, "consult_media_bytes_total", role=role, direction=direction
            ) > value(first, "consult_media_bytes_total", role=role, direction=direction)
            for kind in ("audio", "video"):
                labels = {"role": role, "direction": direction, "kind": kind}
                assert value(second, "consult_media_packets_total", **labels) > value(
                    first, "consult_media_packets_total", **labels
                )
                assert ("consult_media_packets_lost_total", tuple(sorted(labels.items()))) in second
        assert value(
            second, "consult_media_frames_received_total", role=role, kind="video"
        ) > value(first, "consult_media_frames_received_total", role=role, kind="video")
        rtt = value(second, "consult_media_round_trip_seconds", role=role)
        assert 0 < rtt < 1  # loopback
    assert value(second, "consult_calls") == 1
    assert value(second, "consult_participants") == 2

    for source in ("camera", "video"):
        assert value(second, "consult_captures_total", source=source, outcome="saved") == 1
        assert value(second, "consult_capture_seconds_count", source=source) == 1
        assert value(second, "consult_capture_seconds_sum", source=source) > 0
    assert value(second, "consult_errors_total", code="malformed", via="ws") == 1
    assert value(second, "consult_errors_total", code="unknown-type", via="ws") == 1
    assert value(second, "consult_errors_total", code="not-found", via="http") == 1

    # The peers close: their counts stay in the totals, which never go down.
    await stylist.send({"type": "bye"})
    await customer.close()
    await stylist.close()
    for _ in range(100):
        third = await scrape(http, staff)
        if value(third, "consult_peers") == 0:
            break
        await asyncio.sleep(0.1)
    assert value(third, "consult_peers") == 0
    for role in ("customer", "stylist"):
        for direction in ("in", "out"):
            labels = {"role": role, "direction": direction}
            assert value(third, "consult_media_bytes_total", **labels) >= value(
                second, "consult_media_bytes_total", **labels
            )
        assert ("consult_media_round_trip_seconds", (("role", role),)) not in third

    again: CallClient = clients("customer", consultation["customer_link"])
    await again.connect()
    await again.start_media()
    await again.wait_for(lambda: again.placeholder_frames() >= 3)
    fourth = await scrape(http, staff)
    labels = {"role": "customer", "direction": "in"}
    assert value(fourth, "consult_media_bytes_total", **labels) > value(
        third, "consult_media_bytes_total", **labels
    )
