"""CONSULT_FORWARDING=frames: the decode-and-re-encode path still carries a call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.config import Settings

from .calls import assert_live, in_call, peer_of
from .conftest import make_settings

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, forwarding="frames")


async def test_frames_mode_decodes_and_re_encodes_both_ways(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    customer, stylist = await in_call(clients, consultation)
    since = time.monotonic()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", since)) >= 20)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", since)) >= 20)
    assert_live(customer.partner_frames("stylist", since), 20)
    for role in ("customer", "stylist"):
        peer = peer_of(server, consultation, role)
        assert peer.relays == {}
        assert all(inlet.reception is None and inlet.frames > 0 for inlet in peer.inlets.values())


def test_forwarding_is_set_from_the_environment() -> None:
    assert Settings.from_env({}).forwarding == "packets"
    assert Settings.from_env({"CONSULT_FORWARDING": "frames"}).forwarding == "frames"
    with pytest.raises(ValueError):
        Settings.from_env({"CONSULT_FORWARDING": "carrier-pigeon"})
