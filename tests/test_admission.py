"""Admission by headroom: the pure decision, and a full worker refusing a new call for real."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from consult.admission import Admission, Admit, Busy, Sample, admit_limit
from consult.appkeys import HUB
from consult.config import Settings

from .browser import PHONE, Launch, local, open_page, ready_to_join, screenshot
from .calls import in_call
from .client import CallClient
from .conftest import create_consultation, make_settings


def fed(admission: Admission, seconds: int, core: float, calls: int, lag: float = 0.0) -> None:
    """``seconds`` samples, a second apart, of a loop using ``core`` of a core."""
    for at in range(seconds + 1):
        admission.observe(Sample(float(at), at * core, lag, calls))


def test_a_quiet_worker_admits() -> None:
    admission = Admission(cpu_limit=0.85)
    assert admission.decide(0.0, 0) == Admit()  # nothing measured yet
    fed(admission, 5, 0.01, 0)
    assert admission.decide(5.0, 0) == Admit()


def test_a_busy_core_refuses_the_call_that_would_not_fit() -> None:
    admission = Admission(cpu_limit=0.85)
    fed(admission, 5, 0.80, 20)  # 4 % a call: one more makes 84 %
    assert admission.call_cost() == pytest.approx(0.04)
    assert admission.decide(5.0, 20) == Admit()
    # The one just admitted has not shown in the CPU yet: it is counted all the same.
    decision = admission.decide(5.1, 21)
    assert isinstance(decision, Busy) and decision.reason == "cpu"
    assert decision.usage == pytest.approx(0.80)


def test_admitted_calls_stop_counting_once_the_window_has_seen_them() -> None:
    admission = Admission(cpu_limit=0.85, window=5.0, settle=10.0)
    fed(admission, 5, 0.60, 10)  # 6 % a call
    for n in range(4):  # 60 + 6, + 12, + 18, + 24
        assert admission.decide(5.0, 10 + n) == Admit()
    assert isinstance(admission.decide(5.0, 14), Busy)  # + 30: 90 %
    for at in range(6, 16):  # the four show up in the CPU, cheaper than feared: 72 %
        admission.observe(Sample(float(at), 3.0 + (at - 5) * 0.72, 0.0, 14))
    assert admission.usage() == pytest.approx(0.72)
    assert isinstance(admission.decide(14.0, 14), Busy)  # still settling: 72 + 5 x 5.1
    assert admission.decide(15.0, 14) == Admit()


def test_the_first_calls_are_judged_on_the_minimum_cost() -> None:
    assert Admission().min_call_cost == 0.04
    admission = Admission(cpu_limit=0.5, min_call_cost=0.1)
    fed(admission, 5, 0.35, 0)  # something else keeps the loop busy; no call yet
    assert admission.call_cost() == pytest.approx(0.1)
    assert admission.decide(5.0, 0) == Admit()  # 35 + 10
    assert isinstance(admission.decide(5.0, 1), Busy)  # 35 + 2 x 10


def test_a_loop_that_keeps_waking_late_is_full_whatever_its_cpu() -> None:
    admission = Admission(cpu_limit=0.85, max_lag=0.1)
    fed(admission, 5, 0.2, 4)
    admission.observe(Sample(6.0, 1.2, 0.5, 4))  # one pause: not full
    assert admission.decide(6.0, 4) == Admit()
    admission.observe(Sample(7.0, 1.4, 0.3, 4))
    admission.observe(Sample(8.0, 1.6, 0.2, 4))
    decision = admission.decide(8.0, 4)
    assert isinstance(decision, Busy) and decision.reason == "lag"


def test_a_cap_on_calls() -> None:
    admission = Admission(cpu_limit=None, max_calls=2)
    fed(admission, 5, 0.99, 1)
    assert admission.decide(5.0, 1) == Admit()  # CPU not judged
    decision = admission.decide(5.0, 2)
    assert isinstance(decision, Busy) and decision.reason == "calls"


def test_old_samples_leave_the_window() -> None:
    admission = Admission(window=5.0)
    fed(admission, 5, 0.9, 10)
    for at in range(6, 20):  # the load went away
        admission.observe(Sample(float(at), 4.5 + (at - 5) * 0.05, 0.0, 1))
    assert admission.usage() == pytest.approx(0.05)


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    overrides: dict[str, Any] = getattr(request, "param", {})
    return make_settings(tmp_path, **overrides)


async def refused(client: CallClient) -> None:
    error = await client.connect(first="error")
    assert error["code"] == "server-busy"
    assert await client.closed() == 4503


@pytest.mark.timeout(90)
@pytest.mark.parametrize("settings", [{"max_calls": 1}], indirect=True)
async def test_a_full_worker_refuses_a_new_call_and_takes_it_when_one_ends(
    clients: Any, http: Any, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)
    other = await create_consultation(http, staff, customer_name="Second Customer")

    # Both sides of the call that would not fit are told, and nothing of it starts.
    await refused(clients("customer", other["customer_link"]))
    await refused(clients("stylist", other["stylist_link"]))

    # The call in progress is untouched: its participants come back after a drop.
    await stylist.close()
    back: CallClient = clients("stylist", consultation["stylist_link"])
    assert (await back.connect())["peer"] == "present"

    # Once it ends, the waiting one gets in.
    await customer.send({"type": "bye"})
    await back.send({"type": "bye"})
    assert await customer.closed() == 1000 and await back.closed() == 1000
    admitted: CallClient = clients("customer", other["customer_link"])
    assert (await admitted.connect())["peer"] == "absent"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("settings", [{"admit_cpu": 0.08}], indirect=True)
async def test_a_busy_loop_refuses_by_its_measured_cpu(
    server: TestServer, clients: Any, http: Any, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    """This test's peers run on the server's own event loop: a call with media costs that loop
    well over 8 % of a core, the idle loop far less (the limit here, 0.85 in production)."""
    admission = server.app[HUB].admission
    customer, stylist = await in_call(clients, consultation)
    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 30)
    await asyncio.sleep(admission.window + 1)
    usage = admission.usage()
    assert usage is not None and usage > 0.08, usage

    other = await create_consultation(http, staff, customer_name="Second Customer")
    await refused(clients("customer", other["customer_link"]))

    await customer.send({"type": "bye"})
    await stylist.send({"type": "bye"})
    await customer.close()
    await stylist.close()
    # The loop quiets down as the call's media stops; the next try is admitted.
    deadline = time.monotonic() + 30
    while (usage := admission.usage()) is None or usage > 0.03:
        assert time.monotonic() < deadline, usage
        await asyncio.sleep(0.5)
    admitted: CallClient = clients("customer", other["customer_link"])
    assert (await admitted.connect())["peer"] == "absent"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("settings", [{"max_calls": 1}], indirect=True)
async def test_the_page_says_the_service_is_full_and_joins_once_there_is_room(
    launch: Launch, clients: Any, http: Any, staff: dict[str, str], server: Any
) -> None:
    first = await create_consultation(http, staff)
    waiting: CallClient = clients("customer", first["customer_link"])
    await waiting.connect()
    other = await create_consultation(http, staff, customer_name="Second Customer")

    browser = await launch()
    page = await open_page(browser, local(server, other["customer_link"]), PHONE)
    await ready_to_join(page)
    await page.get_by_test_id("join").click()
    status = page.get_by_test_id("call-status")
    await expect(status).to_have_text("The service is full right now. Trying again in a moment…")
    await screenshot(page, "customer-server-busy-phone")

    await waiting.send({"type": "bye"})
    await expect(status).to_have_text("Your stylist will join shortly.", timeout=20_000)
    await browser.close()


def test_a_cpu_quota_lowers_the_limit() -> None:
    assert admit_limit(0.85, None) == 0.85
    assert admit_limit(0.85, 4.0) == 0.85  # the loop runs on one core of the four
    assert admit_limit(0.8, 0.5) == pytest.approx(0.4)
    assert admit_limit(None, 0.5) is None
    # issue 13B: workers share the quota of the cgroup they all run in.
    assert admit_limit(0.85, 0.6, workers=2) == pytest.approx(0.255)
    assert admit_limit(0.85, 4.0, workers=2) == 0.85  # a core each
