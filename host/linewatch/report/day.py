"""The day a report covers: a UTC calendar day, given as YYYY-MM-DD."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

DAY_US = 86_400_000_000


class ReportError(ValueError):
    """The report cannot be made as asked (a bad day, an unreadable database ...)."""


@dataclass(frozen=True)
class Day:
    date: datetime.date

    @property
    def start_us(self) -> int:
        moment = datetime.datetime.combine(self.date, datetime.time(), datetime.timezone.utc)
        return int(moment.timestamp()) * 1_000_000

    @property
    def end_us(self) -> int:
        return self.start_us + DAY_US

    @property
    def text(self) -> str:
        return self.date.isoformat()

    def holds(self, time_us) -> bool:
        return isinstance(time_us, int) and self.start_us <= time_us < self.end_us


def parse_day(text: str) -> Day:
    """'2026-11-25' -> Day; anything else is a ReportError saying what a day looks like."""
    try:
        if len(text) != 10:
            raise ValueError("not 10 characters")
        return Day(datetime.date.fromisoformat(text))
    except (TypeError, ValueError) as exc:
        raise ReportError(f"--day {text!r}: not a day (expected YYYY-MM-DD, a UTC calendar day, like 2026-11-25;"
                          f" {exc})") from None
