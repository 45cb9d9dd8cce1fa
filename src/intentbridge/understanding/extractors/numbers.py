"""Numbers written as digits ("1,250.50", "1.250,50", "2k") or words ("twenty-five").

The word parser is small on purpose: cardinals up to the billions, "a hundred",
"two hundred and fifty", "two and a half". It is what people type into a banking
chat, not a general number grammar. A run of number words that is no cardinal —
"one two three", "twenty twenty", "one billion billion" — is not a number (the
match is dropped) rather than a guess such as the sum of its words. The one
exception is a range: after "between", "one and two" is the numbers 1 and 2.

Digit strings are parsed exactly: arithmetic ("2k") runs in a decimal context wide
enough for any accepted number, and a number has at most :data:`MAX_DIGITS` digits —
a longer digit run is an identifier or noise, not an amount anyone typed.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation

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

#: One number word (an alternation for regexes).
NUMBER_WORD_PATTERN = "|".join(sorted([*_UNITS, *_TENS, *_SCALES, "dozen"], key=len, reverse=True))
# A run of number words; "a"/"an" only before a scale word ("a hundred"), "and" only
# between number words, "and a half" only at the end.
WORDS_PATTERN = (
    rf"(?:\b(?:an?[\s-]+)?(?:{NUMBER_WORD_PATTERN})\b"
    rf"(?:(?:[\s-]+|[\s-]+and[\s-]+)(?:{NUMBER_WORD_PATTERN})\b)*"
    rf"(?:\s+and\s+a\s+half\b)?)"
)
# Digits with optional thousands grouping and decimals, in English ("1,250.50") or
# continental ("1.250,50") style, and an optional multiplier ("2k", "1.5 million");
# a bare "m" is left alone because "10m" is as often minutes or metres as millions.
# Each alternative is atomic: a shorter match of the same alternative is always
# followed by a digit or separator, which the final lookahead rejects anyway, so
# giving back digits one by one (quadratic in a long digit run) can never succeed.
# An exponent is no number, with its sign too: neither the "1" nor the "3" of "1e-3"
# (the final lookahead alone stops "1e3", where a digit follows the "e" at once).
DIGITS_PATTERN = (
    r"(?<![\w.,])(?<!\d[eE][-+\u2212])"
    r"(?:(?>\d{1,3}(?:,\d{3})+(?:\.\d+)?)|(?>\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?)"
    r"|(?>\d+(?:[.,]\d+)?))(?:\s?[kK]\b|\s?(?:mn|million)\b)?(?![\w.,]*\d)"
    r"(?![eE][-+\u2212]\d)"
)
NUMBER_PATTERN = rf"(?:{DIGITS_PATTERN}|{WORDS_PATTERN})"
#: :data:`NUMBER_PATTERN`, compiled as the extractors use it.
NUMBER_RE = re.compile(NUMBER_PATTERN, re.IGNORECASE)
_SPLIT = re.compile(r"[\s-]+")
# where a run of number words may split into two numbers: "one and two"
_AND = re.compile(r"[\s-]+and[\s-]+", re.IGNORECASE)
_BETWEEN = "between"
# The most words a cardinal that parse_number_words accepts can have: 31, as in "a
# twenty-five hundred and ninety-nine billion and nine hundred and ninety-nine million
# and ... and a half". A longer run is no range of two, and is not split: trying every
# "and" of a long run would cost time quadratic in its length.
_MAX_CARDINAL_WORDS = 31
_DIGIT_STRING = re.compile(r"\d+(?:[.,]\d+)*")

#: Digit strings with more digits than this are not numbers.
MAX_DIGITS = 100
# Exact for every accepted number: MAX_DIGITS digits times a million
_EXACT = Context(prec=MAX_DIGITS + 10)


def parse_digits(text: str) -> Decimal | None:
    """Parse a digit string such as "1,250.50", "1.250,50", "3,5" or "2k".

    A comma followed by exactly three digits groups thousands; a comma followed by
    one or two digits is a decimal comma; the same goes for dots in "1.250,50".
    Anything else — exponents ("1e5"), signs, more than :data:`MAX_DIGITS` digits —
    gives None. The value is exact.

    >>> parse_digits("1.250,50")
    Decimal('1250.50')
    """
    s = text.strip().lower().replace(" ", "")
    multiplier = 1
    for suffix, mult in (("million", 1_000_000), ("mn", 1_000_000), ("k", 1000)):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            multiplier = mult
            break
    if not _DIGIT_STRING.fullmatch(s) or len(s) - s.count(",") - s.count(".") > MAX_DIGITS:
        return None
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
        value = Decimal(s)
    except InvalidOperation:  # "1.2.3" after separators were resolved
        return None
    return _EXACT.multiply(value, Decimal(multiplier)) if multiplier != 1 else value


def parse_number_words(text: str) -> Decimal | None:
    """Parse English number words: "twenty-five", "a hundred", "two and a half".

    Only well-formed cardinals count: scale words decrease ("two million three
    thousand"), "and" follows "hundred" or a scale word, and a leading "a"/"an" stands
    for one before "hundred", "dozen" or a scale word ("a thousand") and is otherwise
    just the article ("a three" is 3). Anything else ("five five", "one billion
    billion") gives None.

    >>> parse_number_words("two hundred and fifty")
    Decimal('250')
    """
    words = [w for w in _SPLIT.split(text.strip().lower()) if w]
    if not words or any(w not in _WORDS for w in words):
        return None
    half = words[-3:] == ["and", "a", "half"]
    if half:
        words = words[:-3]
    if words and words[0] in ("a", "an"):
        words = words[1:]
    value = _cardinal(words)
    if value is None:
        return None
    return Decimal(value) + Decimal("0.5") if half else Decimal(value)


def _cardinal(words: list[str]) -> int | None:
    """The value of a well-formed cardinal in ``words`` (no article, no "and a half")."""
    if words == ["zero"]:
        return 0
    total = 0  # completed scale groups: "two million" in "two million three hundred"
    group = 0  # the group being read, below the next scale word
    last = ""  # the group's last word: "", "unit", "teen", "tens", "hundred" or "dozen"
    has_hundred = False
    after_and = False
    scale_limit = 0  # the last scale word's value: later ones must be smaller
    for w in words:
        at_start = total == 0 and group == 0 and last == ""
        if after_and and not (w in _UNITS or w in _TENS):
            return None
        if w == "and":
            if after_and or not (last == "hundred" or (last == "" and total > 0)):
                return None
            after_and = True
            continue
        after_and = False
        if w in _UNITS and 1 <= _UNITS[w] <= 9:
            if last not in ("", "hundred", "tens"):
                return None
            group, last = group + _UNITS[w], "unit"
        elif (w in _UNITS and _UNITS[w] >= 10) or w in _TENS:
            if last not in ("", "hundred"):
                return None
            group += _UNITS.get(w, 0) + _TENS.get(w, 0)
            last = "tens" if w in _TENS else "teen"
        elif w in ("hundred", "dozen"):
            if has_hundred or last == "dozen" or (last == "" and not at_start):
                return None
            group = (group or 1) * (100 if w == "hundred" else 12)
            has_hundred, last = w == "hundred", w
        elif w in _SCALES:  # thousand, million, billion
            scale = _SCALES[w]
            if last == "" and not at_start:
                return None
            amount = (group or 1) * scale
            if scale_limit and (scale >= scale_limit or amount >= scale_limit):
                return None
            total, group, last, has_hundred, scale_limit = total + amount, 0, "", False, scale
        else:  # "zero" among other words, "half", an article inside
            return None
    if after_and or (last == "" and total == 0):
        return None
    if scale_limit and group >= scale_limit:
        return None
    return total + group


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
    >>> [e.value for e in NumberExtractor().extract("between one and two")]
    [1, 2]
    """

    name = "number"

    def extract(self, text: str) -> list[Entity]:
        """All numbers in ``text`` with exact spans."""
        found: list[Entity] = []
        for m in NUMBER_RE.finditer(text):
            value = parse_number(m.group())
            if value is not None:
                found.append(_entity(m.group(), value, m.start()))
            elif _follows_between(text, m.start()):
                found.extend(_range_bounds(m.group(), m.start()))
        return found


def _entity(words: str, value: Decimal, start: int) -> Entity:
    return Entity(
        entity="number",
        value=as_python_number(value),
        start=start,
        end=start + len(words),
        text=words,
        extractor="number",
    )


def _follows_between(text: str, start: int) -> bool:
    """Whether the word "between" and whitespace come just before ``start``."""
    end = start
    while end and text[end - 1].isspace():
        end -= 1
    begin = end - len(_BETWEEN)
    if end == start or begin < 0 or text[begin:end].lower() != _BETWEEN:
        return False
    return begin == 0 or not (text[begin - 1].isalnum() or text[begin - 1] == "_")


def _range_bounds(run: str, start: int) -> list[Entity]:
    """The two numbers of a range such as "one and two" found at ``start``; [] if unclear.

    ``run`` is no cardinal as a whole. It is a range when exactly one of its "and"s
    parts it into two cardinals, the second not opening with a scale word ("and
    hundred" starts no number anyone says): "a hundred and five and two hundred" is
    105 and 200. With no such "and", or several, it is no number, as before.
    """
    if len(_SPLIT.split(run)) > 2 * _MAX_CARDINAL_WORDS + 1:
        return []
    splits: list[tuple[int, int, Decimal, Decimal]] = []
    for sep in _AND.finditer(run):
        high = run[sep.end() :]
        if _SPLIT.split(high.lower(), maxsplit=1)[0] in _SCALES:
            continue
        low_value = parse_number_words(run[: sep.start()])
        high_value = None if low_value is None else parse_number_words(high)
        if low_value is not None and high_value is not None:
            splits.append((sep.start(), sep.end(), low_value, high_value))
    if len(splits) != 1:
        return []
    [(low_end, high_start, low_value, high_value)] = splits
    return [
        _entity(run[:low_end], low_value, start),
        _entity(run[high_start:], high_value, start + high_start),
    ]
