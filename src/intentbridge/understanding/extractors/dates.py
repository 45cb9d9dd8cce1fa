"""Dates: "today", "tomorrow", "next friday", "March 3rd", "3 March 2027", "2026-12-01".

dateparser is thorough but slow (1-30 ms a call, a second on first use) and eager:
it reads "50" as a date. So a regex first finds date-like spans, the common forms
are resolved here in microseconds, and dateparser only sees the leftovers (numeric
forms such as "12/01/2026"), with results cached.

Relative dates resolve against ``today`` (injectable for tests) and prefer the
future: "friday" and "March 3rd" mean the next one; "next friday" means the first
friday after today (as dateparser reads it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache

from intentbridge.types import Entity
from intentbridge.understanding.extractors.numbers import parse_number

_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
    "saturday": 5, "sunday": 6, "tues": 1, "thurs": 3,
}  # fmt: skip
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_WD = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_MON = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_SMALL = r"(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"

_CANDIDATE = re.compile(
    "|".join(
        [
            r"\b(?:the\s+)?day\s+after\s+tomorrow\b",
            r"\b(?:the\s+)?day\s+before\s+yesterday\b",
            r"\b(?:today|tonight|tomorrow|tmrw|yesterday)\b",
            rf"\b(?:(?:next|this|coming|last)\s+)?(?:{_WD})\b",
            r"\b(?:next|this|last)\s+(?:week|month|year)\b",
            rf"\bin\s+{_SMALL}\s+(?:days?|weeks?|months?)\b",
            rf"\b{_SMALL}\s+(?:days?|weeks?|months?)\s+(?:ago|from\s+now)\b",
            rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?(?:{_MON})\.?(?:,?\s+{_YEAR})?\b",
            rf"\b(?:{_MON})\.?\s+(?:the\s+)?{_DAY}(?:,?\s+{_YEAR})?\b",
            r"\b\d{4}-\d{1,2}-\d{1,2}\b",
            r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b",
        ]
    ),
    re.IGNORECASE,
)
_DAY_MONTH = re.compile(
    rf"(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\.?(?:,?\s+({_YEAR}))?$"
)
_MONTH_DAY = re.compile(
    rf"({_MON})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+({_YEAR}))?$"
)
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})$")
_IN_N = re.compile(rf"in\s+({_SMALL})\s+(day|week|month)s?$")
_N_AGO = re.compile(rf"({_SMALL})\s+(day|week|month)s?\s+(ago|from\s+now)$")
_WEEKDAY = re.compile(rf"(?:(next|this|coming|last)\s+)?({_WD})$")
_SPACES = re.compile(r"\s+")


def resolve_date(phrase: str, today: dt.date) -> dt.date | None:
    """Resolve a date phrase relative to ``today``; None when it is not a date.

    >>> resolve_date("next friday", dt.date(2026, 11, 25))
    datetime.date(2026, 11, 27)
    """
    s = _SPACES.sub(" ", phrase.strip().lower())
    simple = _simple(s, today)
    if simple is not _UNHANDLED:
        return simple
    return _dateparser(s, today)


class _Unhandled(dt.date):
    """Marks a phrase the quick parser does not cover (None means "not a date")."""


_UNHANDLED = _Unhandled(1, 1, 1)


def _simple(s: str, today: dt.date) -> dt.date | None:
    fixed = {
        "today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "yesterday": -1,
        "day after tomorrow": 2, "the day after tomorrow": 2,
        "day before yesterday": -2, "the day before yesterday": -2,
    }  # fmt: skip
    if s in fixed:
        return today + dt.timedelta(days=fixed[s])
    if m := _WEEKDAY.match(s):
        return _weekday(today, _WEEKDAYS[m.group(2)], m.group(1))
    if m := re.match(r"(next|this|last) (week|month|year)$", s):
        sign = {"next": 1, "this": 0, "last": -1}[m.group(1)]
        return _shift(today, m.group(2), sign)
    if m := _IN_N.match(s):
        n = parse_number(m.group(1)) if m.group(1) not in ("a", "an") else 1
        return _shift(today, m.group(2), int(n)) if n is not None else None
    if m := _N_AGO.match(s):
        n = parse_number(m.group(1)) if m.group(1) not in ("a", "an") else 1
        if n is None:
            return None
        return _shift(today, m.group(2), int(n) * (-1 if m.group(3) == "ago" else 1))
    if m := _ISO.match(s):
        return _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DAY_MONTH.match(s):
        return _month_day(today, _MONTHS[m.group(2)], int(m.group(1)), m.group(3))
    if m := _MONTH_DAY.match(s):
        return _month_day(today, _MONTHS[m.group(1)], int(m.group(2)), m.group(3))
    return _UNHANDLED


def _weekday(today: dt.date, target: int, modifier: str | None) -> dt.date:
    ahead = (target - today.weekday()) % 7
    if modifier == "last":
        back = (today.weekday() - target) % 7 or 7
        return today - dt.timedelta(days=back)
    if modifier == "next" and ahead == 0:
        ahead = 7
    # a bare weekday, "this" or "coming" friday on a friday means today
    return today + dt.timedelta(days=ahead)


def _shift(today: dt.date, unit: str, n: int) -> dt.date:
    if unit == "day":
        return today + dt.timedelta(days=n)
    if unit == "week":
        return today + dt.timedelta(weeks=n)
    months = today.month - 1 + (n if unit == "month" else 12 * n)
    year, month = today.year + months // 12, months % 12 + 1
    day = min(today.day, _days_in_month(year, month))
    return dt.date(year, month, day)


def _days_in_month(year: int, month: int) -> int:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _month_day(today: dt.date, month: int, day: int, year: str | None) -> dt.date | None:
    if year is not None:
        return _safe_date(int(year), month, day)
    candidate = _safe_date(today.year, month, day)
    if candidate is not None and candidate >= today:
        return candidate
    return _safe_date(today.year + 1, month, day)


@lru_cache(maxsize=4096)
def _dateparser(phrase: str, today: dt.date) -> dt.date | None:
    import dateparser  # slow to import, and most messages never need it

    base = dt.datetime(today.year, today.month, today.day, 12, 0)
    parsed = dateparser.parse(
        phrase,
        languages=["en"],
        settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base},
    )
    return parsed.date() if parsed is not None else None


class DateExtractor:
    """Finds dates; values are :class:`datetime.date`.

    ``today`` returns the reference date (``datetime.date.today`` by default);
    pass a fixed one in tests.

    >>> DateExtractor(today=lambda: dt.date(2026, 11, 25)).extract("pay tomorrow")[0].value
    datetime.date(2026, 11, 26)
    """

    name = "date"

    def __init__(self, today: Callable[[], dt.date] | None = None) -> None:
        self._today = today or dt.date.today

    def extract(self, text: str) -> list[Entity]:
        """All date phrases in ``text`` that resolve to a date."""
        found: list[Entity] = []
        today: dt.date | None = None
        for m in _CANDIDATE.finditer(text):
            today = today or self._today()
            value = resolve_date(m.group(), today)
            if value is None:
                continue
            found.append(
                Entity(
                    entity="date",
                    value=value,
                    start=m.start(),
                    end=m.end(),
                    text=m.group(),
                    extractor="date",
                )
            )
        return found

    def normalise(self, text: str) -> dt.date | None:
        """Resolve a span another component found (e.g. the tagger) to a date."""
        m = _CANDIDATE.search(text)
        return resolve_date(m.group() if m else text, self._today()) if text.strip() else None
