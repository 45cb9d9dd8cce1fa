"""Rule-based entity extractors: money, numbers, dates, lookup tables, regexes, roles.

Each extractor has ``extract(text) -> list[Entity]`` with exact character spans.
:class:`RuleExtractors` runs them together for the pipeline.

>>> from intentbridge.understanding.extractors import MoneyExtractor
>>> MoneyExtractor().extract("send €20")[0].value
Money(amount=Decimal('20'), currency='EUR')
"""

from intentbridge.understanding.extractors.base import Extractor, RuleExtractors, resolve_overlaps
from intentbridge.understanding.extractors.dates import DateExtractor, resolve_date
from intentbridge.understanding.extractors.lookup import LookupExtractor
from intentbridge.understanding.extractors.money import MoneyExtractor, parse_money
from intentbridge.understanding.extractors.numbers import (
    NumberExtractor,
    parse_digits,
    parse_number,
    parse_number_words,
)
from intentbridge.understanding.extractors.regex import RegexExtractor
from intentbridge.understanding.extractors.roles import RoleResolver

__all__ = [
    "DateExtractor",
    "Extractor",
    "LookupExtractor",
    "MoneyExtractor",
    "NumberExtractor",
    "RegexExtractor",
    "RoleResolver",
    "RuleExtractors",
    "parse_digits",
    "parse_money",
    "parse_number",
    "parse_number_words",
    "resolve_date",
    "resolve_overlaps",
]
