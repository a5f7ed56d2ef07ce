"""The palette over HTTP, swatches shown live over the websocket, and the colour tools on a
still through the API: a real server, real websocket clients, a real database."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import cv2
import numpy as np

from consult import colour

from .conftest import create_consultation, token_of
from .fake_camera import HANDS, load_photo


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def palette(http: aiohttp.ClientSession, headers: dict[str, str]) -> list[dict[str, Any]]:
    async with http.get("/api/swatches", headers=headers) as r:
        assert r.status == 200, await r.text()
        swatches: list[dict[str, Any]] = (await r.json())["swatches"]
        return swatches


async def test_the_default_palette_is_open_to_participants_and_edited_by_staff(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    customer = bearer(token_of(consultation["customer_link"]))
    shades = await palette(http, customer)
    assert len(shades) >= 60
    assert {"name", "brand", "code", "hex", "finish", "family", "id"} <= set(shades[0])
    assert len({s["family"] for s in shades}) == 14 and len({s["finish"] for s in shades}) == 6
    async with http.get("/api/swatches") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"

    new = {"name": "Salon Red", "brand": "Ours", "code": "S1", "hex": "#B00B1E", "finish": "cream",
           "family": "red"}  # fmt: skip
    async with http.post("/api/swatches", json=new, headers=customer) as r:
        assert r.status == 401  # a link is not the staff key
    async with http.post("/api/swatches", json=new, headers=staff) as r:
        assert r.status == 201
        created = (await r.json())["swatch"]
    assert created["hex"] == "#b00b1e"
    async with http.post("/api/swatches", json=new, headers=staff) as r:
        assert r.status == 400  # the same name of the same brand twice
    for bad in ({**new, "hex": "red"}, {**new, "finish": "velvet"}, {**new, "name": ""},
                {**new, "extra": 1}, {"name": "x"}):  # fmt: skip
        async with http.post("/api/swatches", json=bad, headers=staff) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid-request"
    async with http.put(
        f"/api/swatches/{created['id']}", json={**new, "finish": "shimmer"}, headers=staff
    ) as r:
        assert r.status == 200 and (await r.json())["swatch"]["finish"] == "shimmer"
    async with http.delete(f"/api/swatches/{created['id']}", headers=staff) as r:
        assert r.status == 204
    async with http.delete(f"/api/swatches/{created['id']}", headers=staff) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "unknown-swatch"
    assert len(await palette(http, customer)) == len(shades)


async def test_palette_export_and_import_round_trip_and_bad_files_change_nothing(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    before = await palette(http, staff)
    async with http.get("/api/swatches/export", params={"format": "csv"}, headers=staff) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        exported = await r.text()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [row["hex"] for row in rows] == [s["hex"] for s in before]

    broken = exported + "Broken,#12,cream,red\n"
    async with http.post(
        "/api/swatches/import", data=broken, headers=staff | {"Content-Type": "text/csv"}
    ) as r:
        assert r.status == 400
        error = (await r.json())["error"]
        assert error["code"] == "invalid-palette" and f"Line {len(rows) + 2}" in error["message"]
    assert await palette(http, staff) == before  # all or nothing

    mine = "name,brand,code,hex,finish,family\nHouse Red,Mine,M1,#a00000,cream,red\n"
    body = exported + "House Red,Mine,M1,#a00000,cream,red\n"
    async with http.post(
        "/api/swatches/import", data=body, headers=staff | {"Content-Type": "text/csv"}
    ) as r:
        assert r.status == 200
        assert {k: v for k, v in (await r.json()).items() if k != "swatches"} == {
            "created": 1, "updated": len(rows), "removed": 0,
        }  # fmt: skip
    # Merged in, the new shade comes after the file's; the rest keep their order.
    after = await palette(http, staff)
    assert [s["id"] for s in after[: len(before)]] == [s["id"] for s in before]
    assert after[-1]["name"] == "House Red"
    partial = "name,brand,code,hex,finish,family\nHouse Red,Mine,M1,#a00000,cream,red\n"
    async with http.post(
        "/api/swatches/import", data=partial, headers=staff | {"Content-Type": "text/csv"}
    ) as r:
        assert r.status == 200
    moved = await palette(http, staff)
    assert moved[0]["name"] == "House Red"
    assert [s["id"] for s in moved[1:]] == [s["id"] for s in before]
    async with http.post(
        "/api/swatches/import",
        params={"mode": "replace"},
        data=mine,
        headers=staff | {"Content-Type": "text/csv"},
    ) as r:
        assert r.status == 200 and (await r.json())["removed"] == len(rows)
    assert [s["name"] for s in await palette(http, staff)] == ["House Red"]
    async with http.get("/api/swatches/export", headers=staff) as r:
        document = await r.json(content_type=None)
    async with http.post("/api/swatches/import", json=document, headers=staff) as r:
        assert r.status == 200 and (await r.json())["updated"] == 1
    async with http.post(
        "/api/swatches/import",
        data=b"x" * (1024 * 1024 + 10),
        headers=staff | {"Content-Type": "text/csv"},
    ) as r:
        assert r.status == 413


async def test_the_stylist_shows_and_chooses_swatches_and_the_record_keeps_them(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any], clients: Any
) -> None:
    shades = await palette(http, staff)
    red, pink = shades[16], shades[9]
    customer = clients("customer", consultation["customer_link"])
    stylist = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()

    await stylist.send({"type": "swatch", "swatch_id": red["id"]})
    for client in (customer, stylist):
        shown = await client.expect("swatch")
        assert shown["swatch"] == red  # exactly the palette's swatch, hex and all
    await customer.send({"type": "swatch", "swatch_id": pink["id"]})
    error = await customer.expect("error")
    assert error["code"] == "unknown-type" and "customer" in error["message"]
    await stylist.send({"type": "swatch", "swatch_id": "nope"})
    assert (await stylist.expect("error"))["code"] == "unknown-swatch"
    await stylist.send({"type": "swatch", "swatch_id": 7})
    assert (await stylist.expect("error"))["code"] == "malformed"

    await stylist.send({"type": "choose", "swatch_id": red["id"]})
    await stylist.send({"type": "choose", "swatch_id": pink["id"]})
    await stylist.send({"type": "choose", "swatch_id": red["id"], "chosen": False})
    for client in (customer, stylist):
        for expected in ([red], [red, pink], [pink]):
            chosen = await client.expect("chosen")
            assert [c["swatch"]["id"] for c in chosen["swatches"]] == [e["id"] for e in expected]
    await stylist.send({"type": "swatch", "swatch_id": pink["id"]})
    await customer.expect("swatch")

    # The palette changes later; the consultation keeps what was shown.
    async with http.delete(f"/api/swatches/{pink['id']}", headers=staff) as r:
        assert r.status == 204
    # A rejoining customer sees the swatch on screen and the choices again.
    await customer.close()
    again = clients("customer", consultation["customer_link"])
    welcome = await again.connect()
    assert welcome["swatch"] == pink
    assert [c["swatch"]["id"] for c in welcome["chosen"]] == [pink["id"]]
    await stylist.send({"type": "swatch", "swatch_id": None})
    assert (await again.expect("swatch"))["swatch"] is None

    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        record = await r.json()
    shown = record["swatches_shown"]
    assert [s["swatch"]["hex"] for s in shown] == [red["hex"], pink["hex"]]
    assert shown[0]["until"] == shown[1]["at"] and "until" in shown[1]  # cleared at the end
    assert [c["swatch"]["name"] for c in record["swatches_chosen"]] == [pink["name"]]
    token = token_of(consultation["customer_link"])
    async with http.get(f"/api/consultations/{consultation['id']}", headers=bearer(token)) as r:
        assert (await r.json())["swatches_chosen"] == record["swatches_chosen"]
    # "The same again": the next consultation starts with the shades chosen this time.
    async with http.post(f"/api/consultations/{consultation['id']}/same-again", headers=staff) as r:
        again_id = (await r.json())["id"]
    async with http.get(f"/api/consultations/{again_id}", headers=staff) as r:
        assert (await r.json())["earlier"]["chosen"] == record["swatches_chosen"]


async def send_photo(
    http: aiohttp.ClientSession, consultation: dict[str, Any], image: np.ndarray
) -> dict[str, Any]:
    ok, png = cv2.imencode(".png", image)
    assert ok
    token = token_of(consultation["customer_link"])
    async with http.post(
        f"/api/consultations/{consultation['id']}/chat-photos",
        params={"id": "p1"},
        data=bytes(png),
        headers=bearer(token) | {"Content-Type": "image/png"},
    ) as r:
        assert r.status == 201, await r.text()
        still: dict[str, Any] = (await r.json())["message"]["still"]
        return still


async def image_of(http: aiohttp.ClientSession, url: str, token: str) -> np.ndarray:
    async with http.get(url, headers=bearer(token)) as r:
        assert r.status == 200
        data = await r.read()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


async def test_colour_tools_on_a_still_through_the_api(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation: dict[str, Any], clients: Any
) -> None:
    photo = load_photo(HANDS / "thumbs_up_white_bg_1920x1280.png")
    photo[100:140, 100:140] = (0x1C, 0x16, 0xC3)  # a patch of #c3161c
    still = await send_photo(http, consultation, photo)
    customer_token = token_of(consultation["customer_link"])
    stylist_token = token_of(consultation["stylist_link"])
    customer, stylist = bearer(customer_token), bearer(stylist_token)
    base = f"/api/stills/{still['id']}"
    customer_ws = clients("customer", consultation["customer_link"])
    await customer_ws.connect()

    async with http.post(f"{base}/sample", json={"x": 120, "y": 120}, headers=customer) as r:
        sample = await r.json()
    assert sample["hex"] == "#c3161c"
    assert sample["nearest"][0]["swatch"]["name"] == "Classic Red"
    assert sample["nearest"][0]["delta_e"] == 0
    assert [n["delta_e"] for n in sample["nearest"]] == sorted(
        n["delta_e"] for n in sample["nearest"]
    )
    for body in ({"x": 5000, "y": 5}, {"rect": [0, 0, 0, 5]}, {}):
        async with http.post(f"{base}/sample", json=body, headers=customer) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid-region"

    async with http.get(f"{base}/undertone", headers=stylist) as r:
        tone = await r.json()
    assert tone["tone"] == "warm" and tone["suggested"] and set(tone["suits"])

    nails = [[[900, 400], [1000, 400], [1000, 520], [900, 520]]]
    async with http.put(f"{base}/nails", json={"polygons": nails}, headers=customer) as r:
        assert r.status == 403  # outlines and derived images are the stylist's
    async with http.put(
        f"{base}/nails", json={"polygons": [[[0, 0], [3000, 0], [0, 10]]]}, headers=stylist
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid-polygon"
    async with http.post(f"{base}/try-on", json={"swatch_id": "x"}, headers=stylist) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "unknown-swatch"
    shades = await palette(http, staff)
    berry = next(s for s in shades if s["name"] == "Mulberry")
    async with http.post(f"{base}/try-on", json={"swatch_id": berry["id"]}, headers=stylist) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid-region"
    async with http.put(f"{base}/nails", json={"polygons": nails}, headers=stylist) as r:
        assert r.status == 200
    async with http.post(f"{base}/try-on", json={"swatch_id": berry["id"]}, headers=stylist) as r:
        assert r.status == 201
        try_on = (await r.json())["still"]
    assert (try_on["source"], try_on["parent_id"]) == ("try-on", still["id"])
    assert try_on["derivation"]["swatch"]["hex"] == berry["hex"]
    assert (await customer_ws.expect("still"))["still"]["id"] == try_on["id"]  # on both screens

    original = await image_of(http, still["url"], customer_token)
    preview = await image_of(http, try_on["url"], customer_token)
    outside = np.ones(original.shape[:2], bool)
    outside[400:521, 900:1001] = False
    assert np.array_equal(preview[outside], original[outside])
    inside = colour.srgb_to_lab(preview[420:500, 920:980].reshape(-1, 3)[:, ::-1] / 255.0)
    target = colour.srgb_to_lab(colour.hex_to_srgb(berry["hex"]))
    assert abs(np.median(colour.hue_angle(inside)) - colour.hue_angle(target)) < 5

    async with http.post(
        f"{base}/white-balance", json={"rect": [100, 100, 40, 40]}, headers=stylist
    ) as r:
        assert r.status == 201
        corrected = (await r.json())["still"]
    assert corrected["derivation"]["method"] == "reference"
    async with http.post(f"{base}/white-balance", json={}, headers=stylist) as r:
        assert r.status == 201 and (await r.json())["still"]["derivation"]["method"] == "grey-world"
    # The original is as it was, and the record lists the children under it.
    assert np.array_equal(await image_of(http, still["url"], customer_token), original)
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        record = await r.json()
    children = [s for s in record["stills"] if s["parent_id"] == still["id"]]
    assert {s["source"] for s in children} == {"try-on", "white-balance"} and len(children) == 3

    # Another consultation's link sees none of it.
    other = await create_consultation(http, staff)
    async with http.post(
        f"{base}/sample", json={"x": 1, "y": 1}, headers=bearer(token_of(other["stylist_link"]))
    ) as r:
        assert r.status == 403
