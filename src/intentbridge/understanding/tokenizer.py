"""Tokenisation that keeps exact character offsets into the original text.

Words keep inner apostrophes, dots and commas between alphanumerics together
("o'clock", "1,250.50", "u.s"); a possessive "'s" is split off, so amounts and abbreviations stay one token;
every other non-space character is a token of its own ("€", "$", "-", "?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A possessive "'s" is its own token so "Aldean's" yields the entity "Aldean".
_TOKEN = re.compile(r"\w+(?:(?:[.,:/]|['’](?![sS]\b))\w+)*|['’][sS]\b|[^\w\s]")


@dataclass(frozen=True, slots=True)
class Token:
    """A token: its text and ``[start, end)`` character offsets."""

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with offsets.

    >>> [t.text for t in tokenize("Send €1,250.50 to Bob's savings")]
    ['Send', '€', '1,250.50', 'to', 'Bob', "'s", 'savings']
    """
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
