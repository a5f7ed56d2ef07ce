"""Prometheus metrics at ``GET /metrics`` (staff key): what is live, and the process's memory.

A registry per application, not the library's global one: two apps in one process (tests)
never mix their numbers. The soak test reads these to prove that nothing is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.process_collector import ProcessCollector

from .appkeys import HUB, METRICS
from .auth import require_staff

__all__ = ["add_routes", "create_registry"]


def create_registry(app: web.Application) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)

    def stat(name: str) -> Callable[[], float]:
        def read() -> float:
            hub = app.get(HUB)
            return float(hub.stats()[name]) if hub is not None else 0.0

        return read

    for name, help_text in (
        ("calls", "Consultations with somebody connected"),
        ("participants", "Connected websockets in calls"),
        ("peers", "Server peer connections"),
        ("inlets", "Received tracks being read"),
    ):
        Gauge(f"consult_{name}", help_text, registry=registry).set_function(stat(name))
    Gauge("consult_asyncio_tasks", "Tasks on the event loop", registry=registry).set_function(
        lambda: float(len(asyncio.all_tasks()))
    )
    return registry


async def metrics(request: web.Request) -> web.Response:
    await require_staff(request)
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
