"""The tests here run on uvloop's event loop, as `consult serve` does (the rest of the suite
runs on asyncio's own): what depends on how the loop reads sockets is tested on the loop the
service uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}
