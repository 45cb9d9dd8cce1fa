"""Named regular expressions from training data (Rasa's ``regex:`` items).

A regex named like an entity ("iban", "account_number") extracts that entity; the
tagger also sees every match as a feature, whatever its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from intentbridge.types import Entity


class RegexExtractor:
    """Finds matches of named patterns; the value is the matched text.

    >>> iban = RegexExtractor({"iban": [r"[A-Z]{2}\\d{2}[A-Z0-9]{11,30}"]})
    >>> iban.extract("to DE44500105175407324931")[0].entity
    'iban'
    """

    name = "regex"

    def __init__(self, patterns: Mapping[str, Sequence[str]]) -> None:
        # one alternation per name keeps matching to a single pass per name
        self._compiled = {
            name: re.compile("|".join(f"(?:{p})" for p in pats))
            for name, pats in patterns.items()
            if pats
        }

    @property
    def names(self) -> set[str]:
        """The pattern names."""
        return set(self._compiled)

    def extract(self, text: str) -> list[Entity]:
        """Every non-empty match of every pattern."""
        found: list[Entity] = []
        for name, rx in self._compiled.items():
            for m in rx.finditer(text):
                if m.end() > m.start():
                    found.append(
                        Entity(
                            entity=name,
                            value=m.group(),
                            start=m.start(),
                            end=m.end(),
                            text=m.group(),
                            extractor="regex",
                        )
                    )
        return sorted(found, key=lambda e: (e.start, -e.end))
