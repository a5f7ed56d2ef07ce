"""What the booking tests share: the salon's availability as staff publish it, its free slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from consult.salon import DAYS

from .conftest import STAFF_KEY

__all__ = ["AVAILABILITY", "a_week_ahead", "free", "publish"]

#: Every day, 09:00 to 18:00 in Shanghai, 30-minute slots, 10 minutes between them.
AVAILABILITY: dict[str, Any] = {
    "weekly": {day: [["09:00", "18:00"]] for day in DAYS},
    "slot_minutes": 30,
    "buffer_minutes": 10,
    "days_ahead": 21,
    "exceptions": {},
    "notice_minutes": 60,
    "cutoff_hours": 24,
}


async def publish(http: aiohttp.ClientSession, **changes: Any) -> None:
    """The salon in Shanghai, with ``AVAILABILITY`` (and ``changes``) published."""
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    salon = {"timezone": "Asia/Shanghai", "hours": {}}
    async with http.put("/api/salon", json=salon, headers=staff) as response:
        assert response.status == 200, await response.text()
    async with http.put("/api/availability", json=AVAILABILITY | changes, headers=staff) as r:
        assert r.status == 200, await r.text()


async def free(http: aiohttp.ClientSession, days: int = 21) -> list[str]:
    now = datetime.now(UTC)
    query = {"from": now.isoformat(), "to": (now + timedelta(days=days)).isoformat()}
    async with http.get("/api/slots", params=query) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["timezone"] == "Asia/Shanghai"
    return [slot["start"] for slot in body["slots"]]


def a_week_ahead(slots: list[str]) -> str:
    """A slot about a week away: far from the cut-off and the reminders' times."""
    target = datetime.now(UTC) + timedelta(days=7)
    return min(slots, key=lambda s: abs(datetime.fromisoformat(s) - target))
