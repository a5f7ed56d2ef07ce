"""Consent to record, as a pure state machine."""

from __future__ import annotations

from consult.signaling.consent import Asked, Consent, Ended, Started


def test_both_must_agree_on_their_own_screen() -> None:
    consent = Consent("c")
    assert consent.ask("stylist") == [Asked("stylist", ())]
    assert consent.ask("customer") == []  # a question is open already
    assert consent.answer("stylist", True) == [Asked("stylist", ("stylist",))]
    assert consent.answer("stylist", True) == []  # agreeing twice adds nothing
    assert consent.state == "asked"
    assert consent.answer("customer", True) == [Started()]
    assert consent.state == "recording"
    assert consent.answer("customer", False) == []  # no open question
    assert consent.stop("customer") == [Ended("stopped", "customer", was_recording=True)]
    assert consent.state == "idle"
    assert consent.stop("customer") == []


def test_one_refusal_ends_the_question() -> None:
    consent = Consent("c")
    consent.ask("customer")
    consent.answer("customer", True)
    assert consent.answer("stylist", False) == [Ended("refused", "stylist", was_recording=False)]
    assert consent.state == "idle"
    # Asked again, the earlier agreement does not count.
    consent.ask("stylist")
    assert consent.answer("stylist", True) == [Asked("stylist", ("stylist",))]


def test_leaving_or_the_server_ends_it() -> None:
    consent = Consent("c")
    assert consent.leave("customer") == []
    consent.ask("customer")
    assert consent.leave("stylist") == [Ended("left", "stylist", was_recording=False)]
    consent.ask("customer")
    consent.answer("customer", True)
    consent.answer("stylist", True)
    assert consent.stop(None, "storage-full") == [Ended("storage-full", None, was_recording=True)]
