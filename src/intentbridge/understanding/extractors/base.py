"""The extractor protocol and the bundle of rule extractors the pipeline runs."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from intentbridge.types import Entity
from intentbridge.understanding.extractors.dates import DateExtractor
from intentbridge.understanding.extractors.lookup import LookupExtractor
from intentbridge.understanding.extractors.money import MoneyExtractor, parse_money
from intentbridge.understanding.extractors.numbers import (
    NumberExtractor,
    as_python_number,
    parse_number,
)
from intentbridge.understanding.extractors.regex import RegexExtractor


class Extractor(Protocol):
    """Anything that finds entities in text with exact character spans.

    >>> class Colour:
    ...     def extract(self, text: str) -> list[Entity]:
    ...         i = text.find("red")
    ...         return [Entity("colour", "red", i, i + 3, "red")] if i >= 0 else []
    """

    def extract(self, text: str) -> list[Entity]:
        """Entities found in ``text``."""
        ...


# When rule matches overlap, the longer wins; on equal length, the more specific kind.
_PRIORITY = {"money": 0, "date": 1, "lookup": 2, "regex": 3, "fuzzy": 4, "number": 5}


def rule_kind(entity: Entity) -> str:
    """A rule match's kind.

    One of ``money``, ``date``, ``number``, ``lookup:<entity>`` or ``regex:<name>``.
    """
    if entity.extractor in ("lookup", "fuzzy"):
        return f"lookup:{entity.entity}"
    if entity.extractor == "regex":
        return f"regex:{entity.entity}"
    return entity.extractor


def resolve_overlaps(entities: Sequence[Entity]) -> list[Entity]:
    """Keep a non-overlapping subset: longest span first, then by extractor priority."""
    ranked = sorted(
        entities,
        key=lambda e: (-(e.end - e.start), _PRIORITY.get(e.extractor, 9), e.start),
    )
    kept: list[Entity] = []
    # the kept spans as (start, end), sorted: they do not overlap, so their ends
    # rise with their starts and one bisection answers "does this one overlap?"
    spans: list[tuple[int, int]] = []
    for ent in ranked:
        k = bisect_left(spans, (ent.end,))  # kept spans starting before ``ent`` ends
        if k and spans[k - 1][1] > ent.start:
            continue
        insort(spans, (ent.start, ent.end))
        kept.append(ent)
    return sorted(kept, key=lambda e: e.start)


class RuleExtractors:
    """Money, number, date, lookup and regex extractors run as one step.

    ``today`` fixes the reference date for relative dates (tests); lookup tables,
    synonyms and regexes usually come from :class:`~intentbridge.understanding.data.TrainingData`.
    """

    def __init__(
        self,
        *,
        lookup_tables: Mapping[str, Sequence[str]] | None = None,
        synonyms: Mapping[str, str] | None = None,
        regexes: Mapping[str, Sequence[str]] | None = None,
        today: Callable[[], dt.date] | None = None,
        fuzzy_threshold: float = 85.0,
        known_words: Collection[str] = (),
    ) -> None:
        self.synonyms = {k.lower(): v for k, v in (synonyms or {}).items()}
        self.lookup_tables = {k: list(v) for k, v in (lookup_tables or {}).items()}
        self.regex_patterns = {k: list(v) for k, v in (regexes or {}).items()}
        self.known_words = frozenset(known_words)
        self.money = MoneyExtractor()
        self.number = NumberExtractor()
        self.date = DateExtractor(today)
        self.lookup = LookupExtractor(
            lookup_tables or {},
            self.synonyms,
            fuzzy_threshold=fuzzy_threshold,
            known_words=known_words,
        )
        self.regex = RegexExtractor(regexes or {})

    def extract(self, text: str) -> list[Entity]:
        """Every candidate from every extractor; overlaps are left for the caller."""
        return [
            *self.money.extract(text),
            *self.date.extract(text),
            *self.lookup.extract(text),
            *self.regex.extract(text),
            *self.number.extract(text),
        ]

    def normalise(self, entity: str, text: str, kind: str | None) -> Any:
        """The normalised value for a span labelled ``entity`` by another component.

        ``kind`` is the rule kind the entity usually has in training data (see
        :func:`rule_kind`); without one, synonyms and lookup tables still apply and
        the text itself is the value.
        """
        if kind == "money":
            money = parse_money(text)
            if money is not None:
                return money
        elif kind == "date":
            day = self.date.normalise(text)
            if day is not None:
                return day
        elif kind == "number":
            number = parse_number(text)
            if number is not None:
                return as_python_number(number)
        synonym = self.synonyms.get(text.lower())
        if synonym is not None:
            return synonym
        canonical = self.lookup.normalise(entity, text)
        if canonical is not None:
            return canonical
        return text
