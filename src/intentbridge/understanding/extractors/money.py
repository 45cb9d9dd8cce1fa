"""Amounts of money: "50 euros", "€1,250.50", "$20", "20 bucks", "EUR 30", "fifty pounds".

Values are :class:`~intentbridge.types.Money` with an ISO 4217 code, or ``None`` as
the currency when only a bare amount is known (see :func:`parse_money`).

Amounts are exact and below :data:`MAX_AMOUNT` (a quadrillion): "send
10000000000000000000000000000 euros" is a typo, an identifier or a test, not a
transfer, so such a match is not money (the number extractor still reports the
number). The bound also keeps what consumers do with an amount — quantize it to
cents in the default 28-digit decimal context — from failing.
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
    parse_number,
)

#: Amounts from this on are not money (see the module docstring).
MAX_AMOUNT = Decimal(10) ** 15
_EXACT = Context(prec=MAX_DIGITS + 10)

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

_SYMBOL = "[" + re.escape("".join(_SYMBOLS)) + "]"
_WORD = "|".join(sorted((re.escape(w) for w in _WORDS), key=len, reverse=True))
_CODE = "|".join(_PREFIX_CODES)
_MONEY_RE = re.compile(
    rf"(?P<pre>{_SYMBOL}|US\$|\b(?:{_CODE})\b)\s?(?P<n1>{NUMBER_PATTERN})"
    rf"|(?P<n2>{NUMBER_PATTERN})\s?(?:(?P<sym>{_SYMBOL})|(?P<word>(?:{_WORD}))\b)",
    re.IGNORECASE,
)
_CURRENCY_ONLY = re.compile(rf"{_SYMBOL}|\b(?:{_WORD})\b", re.IGNORECASE)
# Every place a money match can begin: a currency marker, a digit run, a number word
# or the "a"/"an" before one (zero-width, so each such position is reported)
_STARTS = re.compile(
    rf"(?={_SYMBOL}|US\$|\b(?:{_CODE})\b)|(?<![\w.,])(?=\d)"
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

    A bare number gives ``Money(amount, None)``; no number gives None.

    >>> parse_money("€1,250.50")
    Money(amount=Decimal('1250.50'), currency='EUR')
    """
    m = next(_matches(text), None)
    if m is not None:
        return _from_match(m)
    number = NUMBER_RE.search(text)
    if number is None:
        return None
    amount = parse_number(number.group())
    if amount is None or amount >= MAX_AMOUNT:
        return None
    cur = _CURRENCY_ONLY.search(text)
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
        amount = parse_number(m.group("n1"))
    else:
        currency = _currency(m.group("sym") or m.group("word"))
        amount = parse_number(m.group("n2"))
    if amount is None or amount >= MAX_AMOUNT:
        return None
    return Money(_quantize(amount), currency)


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
        for m in _matches(text):
            value = _from_match(m)
            if value is None:
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
