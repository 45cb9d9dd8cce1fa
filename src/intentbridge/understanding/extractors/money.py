"""Amounts of money: "50 euros", "€1,250.50", "$20", "20 bucks", "EUR 30", "fifty pounds".

Values are :class:`~intentbridge.types.Money` with an ISO 4217 code, or ``None`` as
the currency when only a bare amount is known (see :func:`parse_money`).

Amounts are exact and below :data:`MAX_AMOUNT` (a quadrillion): "send
10000000000000000000000000000 euros" is a typo, an identifier or a test, not a
transfer, so such a match is not money (the number extractor still reports the
number). The bound also keeps what consumers do with an amount — quantize it to
cents in the default 28-digit decimal context — from failing.

A sign is kept, never dropped: "-5 euros", "€-5", "-€5", "EUR -5" and "minus 5 euros"
are ``Money(Decimal("-5"), "EUR")``, so whoever uses the amount sees what was written
(the dialogue refuses amounts that are not more than zero). A dash is a sign only where
it starts a word: in "1e-3", "5-6" or "x-5" it is not, and "3" of "1e-3" is no amount
at all (see :data:`~intentbridge.understanding.extractors.numbers.DIGITS_PATTERN`).

The fractions people type for halves and quarters are read where they make whole
cents: "½ euro" is 0.50 EUR, "1½ euros" and "1 ½ euros" are 1.50 EUR, "€¾" is 0.75 EUR
(see :data:`FRACTIONS`). Other fractions ("⅓ euro", "1⅛ euros") are not money: no
amount of cents is exactly what they say. "NaN" and "inf", which ``float()`` and
``Decimal()`` accept, are never numbers here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Context, Decimal

from intentbridge.types import Entity, Money
from intentbridge.understanding.extractors.numbers import (
    MAX_DIGITS,
    NUMBER_PATTERN,
    NUMBER_RE,
    NUMBER_WORD_PATTERN,
    parse_digits,
    parse_number,
)

#: Amounts from this on are not money (see the module docstring).
MAX_AMOUNT = Decimal(10) ** 15
_EXACT = Context(prec=MAX_DIGITS + 10)

#: The fraction characters read in amounts, and their values: each a whole number of
#: cents, so that "1½ euros" is exactly 1.50 EUR.
FRACTIONS = {"½": Decimal("0.5"), "¼": Decimal("0.25"), "¾": Decimal("0.75")}
# Whole digits, maybe a space, then the fraction ("½", "1½", "2 ½"), as a word of its
# own. Digits glued in front ("1.5½", "x½") or after ("½5") make no amount. The digits
# are atomic: fewer of them are followed by a digit, never by the fraction, so giving
# them back one by one could not succeed (and would be quadratic in a long run).
_FRACTION = "[" + "".join(FRACTIONS) + "]"
_FRACTION_PATTERN = rf"(?<![\w.,])(?:(?>\d+)\s?)?{_FRACTION}(?![\w.,]*\d)"
# the fraction first: "10" alone would do where "10¾" is written
_AMOUNT_PATTERN = rf"(?:{_FRACTION_PATTERN}|{NUMBER_PATTERN})"
_AMOUNT_RE = re.compile(_AMOUNT_PATTERN, re.IGNORECASE)

_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "₣": "CHF"}
_WORDS = {
    "euro": "EUR", "euros": "EUR", "eur": "EUR",
    "dollar": "USD", "dollars": "USD", "usd": "USD", "buck": "USD", "bucks": "USD",
    "us$": "USD",
    "pound": "GBP", "pounds": "GBP", "gbp": "GBP", "quid": "GBP", "sterling": "GBP",
    "yen": "JPY", "jpy": "JPY",
    "franc": "CHF", "francs": "CHF", "chf": "CHF",
    "cad": "CAD", "aud": "AUD", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "pln": "PLN",
    "inr": "INR", "rupee": "INR", "rupees": "INR", "cny": "CNY", "yuan": "CNY",
    "swiss franc": "CHF", "swiss francs": "CHF", "us dollar": "USD", "us dollars": "USD",
    "canadian dollar": "CAD", "canadian dollars": "CAD", "australian dollar": "AUD",
    "australian dollars": "AUD", "british pound": "GBP", "british pounds": "GBP",
}  # fmt: skip
# ISO codes people write before the amount ("EUR 30")
_PREFIX_CODES = (
    "eur",
    "usd",
    "gbp",
    "chf",
    "jpy",
    "cad",
    "aud",
    "sek",
    "nok",
    "dkk",
    "pln",
    "inr",
    "cny",
)

# The currency vocabulary as regex fragments, shared with the dialogue's reading of
# the text around an amount (dialogue/amounts.py)
CURRENCY_SYMBOL = "[" + re.escape("".join(_SYMBOLS)) + "]"
CURRENCY_WORD = "|".join(sorted((re.escape(w) for w in _WORDS), key=len, reverse=True))
CURRENCY_CODE = "|".join(_PREFIX_CODES)
_SYMBOL, _WORD, _CODE = CURRENCY_SYMBOL, CURRENCY_WORD, CURRENCY_CODE
# A minus sign: a hyphen, an en dash or U+2212. It counts only at the start of a word,
# and not after a number and a space ("5 - 3 euros" is arithmetic, not minus three).
_DASH = "[-\u2013\u2212]"
_SIGN_START = r"(?<![\w.,+*/^=<>%\-\u2013\u2212])(?<!\d\s)"
_SIGN = rf"(?:{_DASH}\s?|\b(?:minus|negative)\s+)"
_MONEY_RE = re.compile(
    rf"(?P<s1>{_SIGN})?(?P<pre>{_SYMBOL}|US\$|\b(?:{_CODE})\b)\s?(?P<s2>{_DASH}\s?)?"
    rf"(?P<n1>{_AMOUNT_PATTERN})"
    rf"|(?P<s3>{_SIGN})?(?P<n2>{_AMOUNT_PATTERN})\s?(?:(?P<sym>{_SYMBOL})|(?P<word>(?:{_WORD}))\b)",
    re.IGNORECASE,
)
CURRENCY_MENTION = re.compile(rf"{_SYMBOL}|\b(?:{_WORD})\b", re.IGNORECASE)
"""A currency symbol or word anywhere (no amount needed)."""
_SIGN_BEFORE = re.compile(rf"{_SIGN_START}{_SIGN}$", re.IGNORECASE)
# Every place a money match can begin: a sign, a currency marker, a digit run, a
# number word or the "a"/"an" before one (zero-width, so each such position is reported)
_STARTS = re.compile(
    rf"{_SIGN_START}(?={_SIGN})"
    rf"|(?={_SYMBOL}|US\$|\b(?:{_CODE})\b)|(?<![\w.,])(?=\d|{_FRACTION})"
    rf"|\b(?=an?[\s-]|(?:{NUMBER_WORD_PATTERN})\b)",
    re.IGNORECASE,
)


def _currency(marker: str) -> str | None:
    marker = " ".join(marker.split())
    if marker in _SYMBOLS:
        return _SYMBOLS[marker]
    return _WORDS.get(marker.lower())


def parse_money(text: str) -> Money | None:
    """Normalise a span that should hold an amount ("50 euros", "$20", or just "50").

    A bare number gives ``Money(amount, None)``; no number gives None. A sign before the
    number is kept ("-5" is ``Money(Decimal("-5"), None)``).

    >>> parse_money("€1,250.50")
    Money(amount=Decimal('1250.50'), currency='EUR')
    """
    m = next(_matches(text), None)
    if m is not None:
        return _from_match(m)
    number = _AMOUNT_RE.search(text)
    if number is None:
        return None
    amount = _parse_amount(number.group())
    if amount is None or amount >= MAX_AMOUNT:
        return None
    if _SIGN_BEFORE.search(text, 0, number.start()):
        amount = -amount
    cur = CURRENCY_MENTION.search(text)
    return Money(amount, _currency(cur.group()) if cur else None)


def _matches(text: str) -> Iterator[re.Match[str]]:
    """The matches ``_MONEY_RE.finditer(text)`` gives, in time linear in ``text``.

    ``finditer`` tries the pattern at every position: inside a long run of number
    words not followed by a currency ("one one one ... one") each word start reads
    the rest of the run again, quadratic in the run. Here the pattern is tried only
    where a match can begin, and after a failure at a number word the rest of that
    run is skipped: from any later word of it the same words follow, so the same
    currency check fails (no currency marker fits inside a run of number words).
    """
    resume = 0
    for start in _STARTS.finditer(text):
        pos = start.start()
        if pos < resume:
            continue
        m = _MONEY_RE.match(text, pos)
        if m is not None:
            yield m
            resume = m.end()
        elif not text[pos].isdigit():
            words = NUMBER_RE.match(text, pos)
            if words is not None:
                resume = words.end()


def _from_match(m: re.Match[str]) -> Money | None:
    if m.group("pre"):
        pre = m.group("pre")
        currency = "USD" if pre.upper() == "US$" else _currency(pre)
        amount = _parse_amount(m.group("n1"))
        if m.group("s1") and m.group("s2"):
            return None  # "-€-5": no amount anyone writes
        negative = bool(m.group("s1") or m.group("s2"))
    else:
        currency = _currency(m.group("sym") or m.group("word"))
        amount = _parse_amount(m.group("n2"))
        negative = bool(m.group("s3"))
    if amount is None or amount >= MAX_AMOUNT:
        return None
    amount = _quantize(amount)
    return Money(-amount if negative else amount, currency)


_LAST_AND = re.compile(r".*\band\s+", re.IGNORECASE | re.DOTALL)


def _after_the_last_and(text: str, m: re.Match[str]) -> re.Match[str] | None:
    """The amount and currency after the last "and" of an amount in words that is no
    number ("one and two dollars"), with the same currency; ``None`` when there is
    none. One more match per failed one: extraction stays linear in the text."""
    words = m.group("n2")
    if not words or words[:1].isdigit():
        return None
    last = _LAST_AND.match(words)
    if last is None:
        return None
    again = _MONEY_RE.match(text, m.start("n2") + last.end())
    return again if again is not None and again.end() == m.end() else None


def _parse_amount(text: str) -> Decimal | None:
    """A number as :func:`parse_number` reads it, or a whole and a fraction ("1½")."""
    fraction = FRACTIONS.get(text[-1:])
    if fraction is None:
        return parse_number(text)
    whole = text[:-1].strip()
    if not whole:
        return fraction
    value = parse_digits(whole)
    return None if value is None else value + fraction


def _quantize(amount: Decimal) -> Decimal:
    # keep what the user wrote ("1250.50" stays two places); strip exponent forms of
    # ints ("2k" is 2E+3); exact whatever the default context's precision
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1), context=_EXACT)
    return amount


class MoneyExtractor:
    """Finds amounts with a currency.

    >>> MoneyExtractor().extract("move 50 euros to savings")[0].value
    Money(amount=Decimal('50'), currency='EUR')
    """

    name = "money"

    def extract(self, text: str) -> list[Entity]:
        """All amounts with a currency marker in ``text``."""
        found: list[Entity] = []
        for match in _matches(text):
            m: re.Match[str] | None = match
            value = _from_match(match)
            if value is None:
                # "between one and two dollars": no amount, but its last part is one
                m = _after_the_last_and(text, match)
                value = _from_match(m) if m is not None else None
            if m is None or value is None:
                continue
            found.append(
                Entity(
                    entity="money",
                    value=value,
                    start=m.start(),
                    end=m.end(),
                    text=m.group(),
                    extractor="money",
                )
            )
        return found
