"""Which number of a message is the amount, read together with the words around it.

The NLU may label several spans of one message as the amount ("pay Carol for invoice
12 the amount of 5 euros") and reads each span on its own. The money extractor keeps a
sign written inside its span ("-5 euros" is -5) and reads no digit of "1e-3", but a span
cannot show what is around it: a sign before a bare number ("-5", which the number
extractor reads as 5), an operator ("7*7 euros" gives "7" and "7 euros") or a suffix
("on the 3rd"). :func:`pick_amount` looks at the message text around each candidate:

- a negative amount ("-5 euros", "€-5", "-€5", "minus 5 euros", or a minus before the
  span) is taken as such, so that validation refuses it ("must be more than zero")
  instead of the sign being lost;
- a number glued to operators, exponent notation, quotes, braces or other digits and
  letters ("7*7", "{{7*7}}", "'1'") is not an amount: read as one it would be a guess,
  so it is refused unless a clean amount with a currency is also there; when no entity
  was found at all ("1e-3 euros", "NaN euros", "inf €", "⅓ euro"), :func:`unread_amount`
  says why;
- an ordinal ("the 3rd", "12th") or a bare reference number ("invoice 12", "#12") is
  never an amount;
- of the rest, an amount with a currency beats a bare number, and two different
  amounts of the same kind are not guessed between: the user is asked which one.

For amounts of money one notation is read neither way: a single dot followed by
exactly three digits ("1.500", "€2.250") is a decimal point in English and a
thousands separator in most of Europe. The bot asks ("1.50 EUR or 1,500.00 EUR?")
rather than move a thousand times too much or too little. "1,500" (thousands in
English; no one writes a three-digit decimal comma for money), "1.500,00",
"1,500.00", "1.500.000" and "0.500" are unambiguous and read as the extractors do.

>>> text = "pay Carol for invoice 12 the amount of 5 euros"
>>> ents = [Entity("amount", Money(Decimal(12)), 22, 24, "12"),
...         Entity("amount", Money(Decimal(5), "EUR"), 39, 46, "5 euros")]
>>> pick_amount(text, ents, money=True)
Money(amount=Decimal('5'), currency='EUR')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from intentbridge.types import Entity, Money
from intentbridge.understanding.extractors.money import (
    CURRENCY_CODE,
    CURRENCY_MENTION,
    CURRENCY_SYMBOL,
    CURRENCY_WORD,
)

Kind = Literal["plain", "negative", "garbled", "not_amount"]

_DASHES = "-\u2013\u2212"
# Characters that, touching a number, make it part of something else: a formula, a
# template, a quoted string, an identifier
_GLUE = set("*/^=+<>{}[]|\\~`'\"_%×÷@&" + _DASHES)
_ORDINAL_AFTER = re.compile(r"(?:st|nd|rd|th)\b", re.IGNORECASE)
_REFERENCE_BEFORE = re.compile(
    r"(?:[#\u2116]|\b(?:invoice|order|ref|reference|ticket|no\.|nr\.?)\s*[#:]?\s*)$",
    re.IGNORECASE,
)
_CURRENCY_CODE = rf"\b(?:{CURRENCY_CODE})\s?"
_CURRENCY_SYMBOL = rf"(?:{CURRENCY_SYMBOL}|US\$)\s?"
_CURRENCY = rf"(?:{_CURRENCY_SYMBOL}|{_CURRENCY_CODE})"
# a minus right before the amount, maybe with a currency before or after it
_SIGN_BEFORE = re.compile(
    rf"(?:[{_DASHES}]|\b(?:minus|negative)\b)\s?(?:{_CURRENCY})?$", re.IGNORECASE
)
_THREE_AFTER_DOT = re.compile(r"(?<![\d.,])([1-9]\d{0,2})\.(\d{3})(?![\d.,])")
# What float() and Decimal() read as numbers but no amount is: "NaN", "inf", "∞"
_NOT_A_NUMBER = r"(?:\b(?:s?nan|inf(?:inity)?)\b|\u221e)"
# Fractions the money extractor does not read (no whole number of cents): "⅓", "⅛"
_VULGAR_FRACTION = "[\u00bc-\u00be\u2150-\u215e\u2189]"
# Something like a number that the NLU did not read, next to a currency: "1e-3 euros",
# "5e2 €", "€0x10", "NaN euros", "EUR inf", "⅓ euro". Only to explain why no amount was
# taken, never to read one.
_UNREAD_RUN = re.compile(
    rf"(?<!\S)(?:(?:{CURRENCY_SYMBOL}|\b(?:{CURRENCY_CODE})\b)\s?)?"
    rf"(?P<run>\S*(?:\d|{_NOT_A_NUMBER}|{_VULGAR_FRACTION})\S*)"
    rf"(?:\s?(?:{CURRENCY_SYMBOL}|\b(?:{CURRENCY_WORD})\b))?",
    re.IGNORECASE,
)
_PLAIN_NUMBER = re.compile(
    r"\d{1,3}(?:[.,]\d{3})*(?:[.,]\d+)?|\d+(?:[.,]\d+)?|\d+(?:st|nd|rd|th)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Unclear:
    """No amount can be taken from the message without guessing.

    ``options`` are the readings to choose from (two amounts, or two readings of
    "1.500"); without options the text ``shown`` cannot be read as an amount at all.
    """

    shown: str
    options: tuple[Any, ...] = ()

    @property
    def is_choice(self) -> bool:
        return bool(self.options)


@dataclass(frozen=True, slots=True)
class _Reading:
    kind: Kind
    value: Any
    shown: str
    entity: Entity


def pick_amount(text: str, candidates: Sequence[Entity], *, money: bool) -> Any | Unclear | None:
    """The amount ``candidates`` (spans of ``text``) stand for; None when none is one.

    A negative amount is returned as such (validation refuses it with its reason);
    :class:`Unclear` when the user must be asked which amount, or told that what they
    wrote is not one. ``money``: the parameter is an amount of money ("1.500" rule).
    """
    readings = [_read(text, ent) for ent in candidates]
    negative = [r for r in readings if r.kind == "negative"]
    if negative:
        return negative[0].value
    plain = [r for r in readings if r.kind == "plain"]
    garbled = [r for r in readings if r.kind == "garbled"]
    with_currency = [r for r in plain if _currency(r.value) is not None]
    # a garbled mention makes bare numbers said with it untrustworthy too
    pool = with_currency or ([] if garbled else plain)
    if not pool:
        return Unclear(shown=garbled[0].shown) if garbled else None
    distinct: list[Any] = []
    for r in pool:
        if not any(_same(r.value, seen) for seen in distinct):
            distinct.append(r.value)
    if len(distinct) > 1:
        return Unclear(shown=" / ".join(r.shown for r in pool), options=tuple(distinct))
    chosen = pool[0]
    if money:
        readings_of = _dot_thousands(chosen)
        if readings_of is not None:
            return Unclear(shown=chosen.shown, options=readings_of)
    return chosen.value


def unread_amount(text: str, entities: Sequence[Entity]) -> Unclear | None:
    """An amount written so that no entity reads it ("1e-3 euros", "NaN euros"), to say so.

    Only a run of digits glued to other signs, a word that only programs read as a
    number ("NaN", "inf", "Infinity", "∞") or a fraction that is no whole number of
    cents ("⅓"), right next to a currency, counts: a plain number nobody labelled is
    left alone (it may be anything).
    """
    for m in _UNREAD_RUN.finditer(text):
        run = m.group("run")
        if _PLAIN_NUMBER.fullmatch(run.strip("€$£¥₹₣.,!?;:()")):
            continue
        if not CURRENCY_MENTION.search(m.group()):
            continue
        # read as an amount or number already; a name the NLU saw in "Inf euros" is not
        if any(e.start < m.end() and e.end > m.start() and _numeric(e) for e in entities):
            continue
        return Unclear(shown=m.group().strip())
    return None


def read_free_text(text: str) -> str | Unclear:
    """A whole message given as an amount: "1.500" is asked about, as in an entity."""
    found = _THREE_AFTER_DOT.fullmatch(text.strip())
    if found is None:
        return text
    whole, part = found.groups()
    return Unclear(shown=text.strip(), options=_both_readings(whole, part, None))


def _read(text: str, ent: Entity) -> _Reading:
    value = ent.value
    if _sign(value) < 0:
        return _Reading("negative", value, ent.text, ent)
    if text[ent.start : ent.end] != ent.text or ent.start == ent.end:
        return _Reading("plain", value, ent.text, ent)  # a button payload: no context
    before, after = text[: ent.start], text[ent.end :]
    span = ent.text
    ends_in_digit = span[-1:].isdigit()
    if ends_in_digit and _ORDINAL_AFTER.match(after):
        return _Reading("not_amount", value, span, ent)
    if _currency(value) is None and _REFERENCE_BEFORE.search(before):
        return _Reading("not_amount", value, span, ent)  # "invoice 12", "#12"
    shown = _glued_run(text, ent.start, ent.end)
    sign = _SIGN_BEFORE.search(before)
    if sign is not None:
        ahead = before[: sign.start()]
        # a word start ("-5", "€-5", "(-5") after no number: a sign, not arithmetic
        touching = ahead[-1:]
        if not (touching.isalnum() or touching in _GLUE or ahead.rstrip()[-1:].isdigit()):
            return _Reading("negative", _negate(value), before[sign.start() :] + span, ent)
        return _Reading("garbled", value, shown, ent)
    last = before[-1:]
    first = after[:1]
    if last and (last.isalnum() or last in _GLUE or last in ".,"):
        return _Reading("garbled", value, shown, ent)
    if ends_in_digit and first.isalnum():  # "10x", "1e-3", "5eur" read apart
        return _Reading("garbled", value, shown, ent)
    # "7*7", "5-6", "1.2.3"; after a currency only before a digit: "50 euros/month" is fine
    glued_after = first in _GLUE and (ends_in_digit or after[1:2].isdigit())
    if first and (glued_after or (first in ".," and after[1:2].isdigit())):
        return _Reading("garbled", value, shown, ent)
    return _Reading("plain", value, span, ent)


def _glued_run(text: str, start: int, end: int) -> str:
    """The span widened to the whitespace around it: "1e-3 euros" for "3 euros"."""
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def _dot_thousands(reading: _Reading) -> tuple[Any, ...] | None:
    """Both readings of "1.500" in an amount of money, or None when it is not so written."""
    value = reading.value
    found = _THREE_AFTER_DOT.findall(reading.entity.text)
    if len(found) != 1 or not isinstance(value, Money | Decimal | int):
        return None
    whole, part = found[0]
    amount = value.amount if isinstance(value, Money) else Decimal(value)
    if amount != Decimal(f"{whole}.{part}"):
        return None  # the extractor read it some other way ("1.500k")
    return _both_readings(whole, part, _currency(value))


def _both_readings(whole: str, part: str, currency: str | None) -> tuple[Money, Money]:
    """Both readings of "1.500": 1.50 (shown with cents when it has no more) and 1,500."""
    english = Decimal(f"{whole}.{part}")
    if english == round(english, 2):
        english = english.quantize(Decimal("0.01"))
    return (Money(english, currency), Money(Decimal(whole + part), currency))


def _numeric(ent: Entity) -> bool:
    value = ent.value
    is_number = isinstance(value, Money | Decimal | int | float) and not isinstance(value, bool)
    return is_number or ent.entity in {"amount", "money", "number"}


def _sign(value: Any) -> int:
    amount = value.amount if isinstance(value, Money) else value
    if isinstance(amount, int | Decimal | float) and not isinstance(amount, bool):
        return -1 if amount < 0 else 1
    return 1


def _negate(value: Any) -> Any:
    if isinstance(value, Money):
        return Money(-value.amount, value.currency)
    if isinstance(value, int | Decimal | float) and not isinstance(value, bool):
        return -value
    return value


def _currency(value: Any) -> str | None:
    return value.currency if isinstance(value, Money) else None


def _same(a: Any, b: Any) -> bool:
    def key(v: Any) -> tuple[Any, str | None]:
        if isinstance(v, Money):
            return (v.amount, v.currency)
        return (v, None)

    return key(a) == key(b)
