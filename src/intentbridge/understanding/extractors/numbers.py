"""Numbers written as digits ("1,250.50", "1.250,50", "2k") or words ("twenty-five").

The word parser is small on purpose: cardinals up to the millions, "a hundred",
"two hundred and fifty", "two and a half". It is what people type into a banking
chat, not a general number grammar.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from intentbridge.types import Entity

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_WORDS = {**_UNITS, **_TENS, **_SCALES, "a": 1, "an": 1, "half": 0, "and": 0, "dozen": 12}

_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES, "dozen"], key=len, reverse=True))
# A run of number words; "a"/"an" only before a scale word ("a hundred"), "and" only
# between number words, "and a half" only at the end.
WORDS_PATTERN = (
    rf"(?:\b(?:an?[\s-]+)?(?:{_NUMBER_WORD})\b"
    rf"(?:(?:[\s-]+|[\s-]+and[\s-]+)(?:{_NUMBER_WORD})\b)*"
    rf"(?:\s+and\s+a\s+half\b)?)"
)
# Digits with optional thousands grouping and decimals, in English ("1,250.50") or
# continental ("1.250,50") style, and an optional multiplier ("2k", "1.5 million");
# a bare "m" is left alone because "10m" is as often minutes or metres as millions.
DIGITS_PATTERN = (
    r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?"
    r"|\d+(?:[.,]\d+)?)(?:\s?[kK]\b|\s?(?:mn|million)\b)?(?![\w.,]*\d)"
)
NUMBER_PATTERN = rf"(?:{DIGITS_PATTERN}|{WORDS_PATTERN})"
_NUMBER_RE = re.compile(NUMBER_PATTERN, re.IGNORECASE)
_SPLIT = re.compile(r"[\s-]+")


def parse_digits(text: str) -> Decimal | None:
    """Parse a digit string such as "1,250.50", "1.250,50", "3,5" or "2k".

    A comma followed by exactly three digits groups thousands; a comma followed by
    one or two digits is a decimal comma; the same goes for dots in "1.250,50".

    >>> parse_digits("1.250,50")
    Decimal('1250.50')
    """
    s = text.strip().lower().replace(" ", "")
    multiplier = Decimal(1)
    for suffix, mult in (("million", 1_000_000), ("mn", 1_000_000), ("k", 1000)):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            multiplier = Decimal(mult)
            break
    if "," in s and "." in s:
        # whichever separator comes last is the decimal one
        if s.rfind(",") > s.rfind("."):
            s = s.replace(".", "").replace(",", ".")
        else:
            s = s.replace(",", "")
    elif "," in s:
        parts = s.split(",")
        if all(len(p) == 3 for p in parts[1:]) and len(parts[0]) <= 3:
            s = s.replace(",", "")
        elif len(parts) == 2:
            s = s.replace(",", ".")
        else:
            return None
    elif s.count(".") > 1:
        parts = s.split(".")
        if not all(len(p) == 3 for p in parts[1:]):
            return None
        s = s.replace(".", "")
    try:
        value = Decimal(s) * multiplier
    except InvalidOperation:
        return None
    return value


def parse_number_words(text: str) -> Decimal | None:
    """Parse English number words: "twenty-five", "a hundred", "two and a half".

    >>> parse_number_words("two hundred and fifty")
    Decimal('250')
    """
    words = [w for w in _SPLIT.split(text.strip().lower()) if w]
    if not words or any(w not in _WORDS for w in words):
        return None
    half = False
    if words[-3:] == ["and", "a", "half"]:
        half = True
        words = words[:-3]
    total = 0
    current = 0
    seen_number = False
    for w in words:
        if w in ("and",):
            continue
        if w in ("a", "an"):
            current = max(current, 1) if not seen_number else current
            continue
        seen_number = True
        if w in _UNITS or w in _TENS:
            current += _UNITS.get(w, 0) + _TENS.get(w, 0)
        elif w == "dozen":
            current = (current or 1) * 12
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in _SCALES:
            total += (current or 1) * _SCALES[w]
            current = 0
    if not seen_number:
        return None
    value = Decimal(total + current)
    if half:
        value += Decimal("0.5")
    return value


def parse_number(text: str) -> Decimal | None:
    """Parse digits or number words, whichever ``text`` is; None when neither."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0].isdigit():
        return parse_digits(stripped)
    return parse_number_words(stripped)


def as_python_number(value: Decimal) -> int | Decimal:
    """An ``int`` for whole numbers, else the ``Decimal`` itself."""
    return int(value) if value == value.to_integral_value() else value


class NumberExtractor:
    """Finds numbers in digits or words; values are ``int`` or ``Decimal``.

    >>> NumberExtractor().extract("send twenty-five")[0].value
    25
    """

    name = "number"

    def extract(self, text: str) -> list[Entity]:
        """All numbers in ``text`` with exact spans."""
        found: list[Entity] = []
        for m in _NUMBER_RE.finditer(text):
            value = parse_number(m.group())
            if value is None:
                continue
            found.append(
                Entity(
                    entity="number",
                    value=as_python_number(value),
                    start=m.start(),
                    end=m.end(),
                    text=m.group(),
                    extractor="number",
                )
            )
        return found
