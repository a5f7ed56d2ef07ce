"""The retry policy: permanent refusals fail at once, the rest back off and finally give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consult.mail.policy import Accepted, Failed, Refused, RetryAt, RetryPolicy, Sent, classify

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    first=timedelta(seconds=30), cap=timedelta(hours=1), give_up_after=timedelta(days=2)
)


def test_reply_codes() -> None:
    assert classify(550) == "permanent"
    assert classify(554) == "permanent"
    assert classify(421) == "temporary"
    assert classify(451) == "temporary"
    assert classify(None) == "temporary"  # no reply: down, timed out, cut off


def test_accepted_is_sent() -> None:
    assert POLICY.decide(Accepted(), 1, T0, T0) == Sent()


def test_a_permanent_refusal_fails_at_once() -> None:
    outcome = POLICY.decide(Refused(550, "5.1.1 No such user"), 1, T0, T0)
    assert outcome == Failed("550 5.1.1 No such user")


def test_temporary_failures_back_off_doubling_up_to_the_cap() -> None:
    delays = []
    for attempts in range(1, 11):
        outcome = POLICY.decide(Refused(None, "Connection refused"), attempts, T0, T0)
        assert isinstance(outcome, RetryAt)
        assert outcome.reason == "Connection refused"
        delays.append((outcome.at - T0).total_seconds())
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert POLICY.delay(10_000) == timedelta(hours=1)  # no overflow on a very long outage


def test_a_temporary_failure_gives_up_when_the_email_is_too_old() -> None:
    now = T0 + timedelta(days=2) - timedelta(minutes=30)
    assert isinstance(POLICY.decide(Refused(451, "try later"), 3, T0, now), RetryAt)
    later = T0 + timedelta(days=2)
    outcome = POLICY.decide(Refused(451, "try later"), 40, T0, later)
    assert outcome == Failed("gave up after 40 attempts: 451 try later")
