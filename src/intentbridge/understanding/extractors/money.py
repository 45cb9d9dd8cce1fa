"""Amounts of money: "50 euros", "€1,250.50", "$20", "20 bucks", "EUR 30", "fifty pounds".

Values are :class:`~intentbridge.types.Money` with an ISO 4217 code, or ``None`` as
the currency when only a bare amount is known (see :func:`parse_money`).
"""

from __future__ import annotations

import re
from decimal import Decimal

from intentbridge.types import Entity, Money
from intentbridge.understanding.extractors.numbers import NUMBER_PATTERN, parse_number

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
    m = _MONEY_RE.search(text)
    if m is not None:
        return _from_match(m)
    number = re.search(NUMBER_PATTERN, text, re.IGNORECASE)
    if number is None:
        return None
    amount = parse_number(number.group())
    if amount is None:
        return None
    cur = _CURRENCY_ONLY.search(text)
    return Money(amount, _currency(cur.group()) if cur else None)


def _from_match(m: re.Match[str]) -> Money | None:
    if m.group("pre"):
        pre = m.group("pre")
        currency = "USD" if pre.upper() == "US$" else _currency(pre)
        amount = parse_number(m.group("n1"))
    else:
        currency = _currency(m.group("sym") or m.group("word"))
        amount = parse_number(m.group("n2"))
    if amount is None:
        return None
    return Money(_quantize(amount), currency)


def _quantize(amount: Decimal) -> Decimal:
    # keep what the user wrote ("1250.50" stays two places); strip exponent forms of ints
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


class MoneyExtractor:
    """Finds amounts with a currency.

    >>> MoneyExtractor().extract("move 50 euros to savings")[0].value
    Money(amount=Decimal('50'), currency='EUR')
    """

    name = "money"

    def extract(self, text: str) -> list[Entity]:
        """All amounts with a currency marker in ``text``."""
        found: list[Entity] = []
        for m in _MONEY_RE.finditer(text):
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
