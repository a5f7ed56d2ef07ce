"""Aftercare check-ins, the rules (no I/O): when they fall due, what the customer is asked,
what a valid answer is, and where a check-in stands (due, overdue, answered).

Lifting and chipping show in the first two weeks after a set: by default the salon asks on
days 3 and 14 (``DEFAULT_DAYS``), editable per consultation and as the salon's setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .errors import InvalidRequest

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_OVERDUE_DAYS",
    "MAX_CHECKINS",
    "QUALITY_REFUSED",
    "VIEWS",
    "Answers",
    "CheckinDefaults",
    "Standing",
    "View",
    "answered_text",
    "check_days",
    "due_times",
    "message_key",
    "request_text",
    "standing",
]

#: The views asked for, in order: the nails from above, from the side, the cuticles close up.
View = Literal["top", "side", "cuticles"]
VIEWS: tuple[View, ...] = ("top", "side", "cuticles")
DEFAULT_DAYS = (3, 14)
#: An unanswered check-in is overdue this many days after it fell due.
DEFAULT_OVERDUE_DAYS = 2
#: At most this many check-ins per consultation, and days from 1 to a year.
MAX_CHECKINS = 10
MAX_DAY = 365
#: The quality gate's flags that refuse a check-in photo (a retake is asked for): a blurry,
#: dark or washed-out photo shows nothing of lifting or chipping. No hand, or glare, is kept
#: with its flag: a close-up of the cuticles can fill the frame with nail.
QUALITY_REFUSED = frozenset({"blur", "underexposed", "overexposed"})

Standing = Literal["scheduled", "due", "overdue", "answered"]


@dataclass(frozen=True)
class CheckinDefaults:
    """The salon's setting: check-ins ``days`` after a consultation, overdue after
    ``overdue_days`` unanswered."""

    days: tuple[int, ...] = DEFAULT_DAYS
    overdue_days: int = DEFAULT_OVERDUE_DAYS

    def __post_init__(self) -> None:
        check_days(self.days)
        if not 1 <= self.overdue_days <= 30:
            raise InvalidRequest("overdue_days is from 1 to 30.")

    def to_json(self) -> dict[str, Any]:
        return {"days": list(self.days), "overdue_days": self.overdue_days}


def check_days(days: Sequence[int]) -> None:
    if len(days) > MAX_CHECKINS:
        raise InvalidRequest(f"At most {MAX_CHECKINS} check-ins.")
    if any(not 1 <= d <= MAX_DAY for d in days) or len(set(days)) != len(days):
        raise InvalidRequest(f"Check-in days are different whole days from 1 to {MAX_DAY}.")


def due_times(done_at: datetime, days: Sequence[int]) -> list[datetime]:
    """The check-ins' due times ``days`` after the consultation was done, in order."""
    check_days(days)
    return [done_at + timedelta(days=d) for d in sorted(days)]


@dataclass(frozen=True)
class Answers:
    """The customer's short form. ``lifting`` and ``chipping``: whether they see any;
    ``comfort`` from 1 (sore) to 5 (comfortable)."""

    lifting: bool
    chipping: bool
    comfort: int
    text: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.comfort <= 5:
            raise InvalidRequest("comfort is from 1 to 5.")
        if len(self.text) > 2000:
            raise InvalidRequest("The text is limited to 2000 characters.")

    def to_json(self) -> dict[str, Any]:
        return {
            "lifting": self.lifting,
            "chipping": self.chipping,
            "comfort": self.comfort,
            "text": self.text,
        }


def standing(state: str, due_at: datetime, now: datetime, overdue_days: int) -> Standing:
    """Where a check-in stands for the dashboard: answered; scheduled (not yet due); due (its
    request sent, waiting for the answer); overdue (unanswered ``overdue_days`` after it fell
    due, or its request not sent by then)."""
    if state == "answered":
        return "answered"
    if now >= due_at + timedelta(days=overdue_days):
        return "overdue"
    return "due" if state == "sent" or now >= due_at else "scheduled"


#: The photo request's words, in the customer's language (the link follows them).
REQUEST_TEXT = {
    "en": (
        "Time for your aftercare check-in: how are your nails doing? Please send three photos "
        "(from above, from the side, and a close-up of the cuticles) and answer four short "
        "questions. Open your check-in: {url}"
    ),
    "zh-CN": (
        "到了美甲售后回访的时间:您的指甲情况如何?请拍三张照片(正上方、侧面、甲根特写)"
        "并回答四个小问题。打开回访:{url}"
    ),
}
ANSWERED_TEXT = {
    "en": "I answered my aftercare check-in: {summary}",
    "zh-CN": "我已完成售后回访:{summary}",
}
SUMMARY = {
    "en": ("lifting: {lifting}, chipping: {chipping}, comfort {comfort}/5", "yes", "no"),
    "zh-CN": ("翘起:{lifting},剥落:{chipping},舒适度 {comfort}/5", "有", "无"),
}


def request_text(language: str, url: str) -> str:
    return REQUEST_TEXT.get(language, REQUEST_TEXT["en"]).format(url=url)


def answered_text(language: str, answers: Answers) -> str:
    """The customer's message that tells the salon (the inbox) a check-in was answered."""
    pattern, yes, no = SUMMARY.get(language, SUMMARY["en"])
    summary = pattern.format(
        lifting=yes if answers.lifting else no,
        chipping=yes if answers.chipping else no,
        comfort=answers.comfort,
    )
    return ANSWERED_TEXT.get(language, ANSWERED_TEXT["en"]).format(summary=summary)


def message_key(checkin_id: str, what: Literal["request", "answered"]) -> str:
    """The conversation message's client id: one request and one answered notice per
    check-in, whoever sends it how often (the chat keeps the first). The request's is the
    due-work key, ``checkin:<id>``."""
    return f"checkin:{checkin_id}" if what == "request" else f"checkin-answered:{checkin_id}"
