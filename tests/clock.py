"""A clock a test moves by hand: injected where the service asks for the time (``clock``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Clock"]


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now
