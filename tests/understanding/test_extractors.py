"""Rule extractors: money, numbers, dates, lookup with synonyms and typos, regexes, roles."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from intentbridge.types import Entity, Money
from intentbridge.understanding.extractors import (
    DateExtractor,
    LookupExtractor,
    MoneyExtractor,
    NumberExtractor,
    RegexExtractor,
    RoleResolver,
    RuleExtractors,
    parse_money,
    parse_number,
    resolve_overlaps,
)
from intentbridge.understanding.tokenizer import tokenize

TODAY = dt.date(2026, 11, 25)  # a Wednesday


def only(entities: list[Entity]) -> Entity:
    assert len(entities) == 1, entities
    return entities[0]


@pytest.mark.parametrize(
    ("text", "span", "amount", "currency"),
    [
        ("move 50 euros to savings", "50 euros", "50", "EUR"),
        ("pay €1,250.50 now", "€1,250.50", "1250.50", "EUR"),
        ("it was 1.250,50 € in total", "1.250,50 €", "1250.50", "EUR"),
        ("send $20", "$20", "20", "USD"),
        ("lend me 20 bucks", "20 bucks", "20", "USD"),
        ("fifty euros please", "fifty euros", "50", "EUR"),
        ("twenty-five pounds", "twenty-five pounds", "25", "GBP"),
        ("EUR 30 to Bob", "EUR 30", "30", "EUR"),
        ("30 eur to Bob", "30 eur", "30", "EUR"),
        ("30EUR to Bob", "30EUR", "30", "EUR"),
        ("£15", "£15", "15", "GBP"),
        ("a hundred quid", "a hundred quid", "100", "GBP"),
        ("1k dollars", "1k dollars", "1000", "USD"),
        ("two hundred and fifty euros", "two hundred and fifty euros", "250", "EUR"),
        ("€ 12.50", "€ 12.50", "12.50", "EUR"),
        ("300$", "300$", "300", "USD"),
        ("US$ 5", "US$ 5", "5", "USD"),
        ("10 swiss francs", "10 swiss francs", "10", "CHF"),
    ],
)
def test_money(text: str, span: str, amount: str, currency: str) -> None:
    ent = only(MoneyExtractor().extract(text))
    assert ent.text == span
    assert text[ent.start : ent.end] == span
    assert ent.value == Money(Decimal(amount), currency)
    assert ent.entity == "money"


@pytest.mark.parametrize(
    "text", ["send 50 to bob", "europe is nice", "usd is up", "I have 2 cards"]
)
def test_no_money_without_both_number_and_currency(text: str) -> None:
    assert MoneyExtractor().extract(text) == []


def test_parse_money_of_a_bare_amount_has_no_currency() -> None:
    assert parse_money("50") == Money(Decimal("50"), None)
    assert parse_money("fifty") == Money(Decimal("50"), None)
    assert parse_money("nothing here") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("1,250", 1250),
        ("1,250.50", Decimal("1250.50")),
        ("1.250,50", Decimal("1250.50")),
        ("3,5", Decimal("3.5")),
        ("2k", 2000),
        ("1.5 million", 1500000),
        ("seven", 7),
        ("nineteen", 19),
        ("twenty-one", 21),
        ("ninety nine", 99),
        ("a hundred", 100),
        ("three hundred and twelve", 312),
        ("one thousand two hundred", 1200),
        ("two and a half", Decimal("2.5")),
        ("a dozen", 12),
    ],
)
def test_numbers(text: str, value: int | Decimal) -> None:
    ent = only(NumberExtractor().extract(f"about {text} of them"))
    assert ent.text == text
    assert ent.value == value
    assert type(ent.value) is type(value)


def test_number_parsers_reject_junk() -> None:
    assert parse_number("") is None
    assert parse_number("one apple") is None
    assert parse_number("1,2,3") is None
    assert NumberExtractor().extract("version 1.2.3 and an apple") == []


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("pay it today", "today", dt.date(2026, 11, 25)),
        ("pay it tomorrow", "tomorrow", dt.date(2026, 11, 26)),
        ("the day after tomorrow", "the day after tomorrow", dt.date(2026, 11, 27)),
        ("yesterday", "yesterday", dt.date(2026, 11, 24)),
        ("next friday", "next friday", dt.date(2026, 11, 27)),
        ("on friday", "friday", dt.date(2026, 11, 27)),
        ("next wednesday", "next wednesday", dt.date(2026, 12, 2)),
        ("on wednesday", "wednesday", dt.date(2026, 11, 25)),
        ("last monday", "last monday", dt.date(2026, 11, 23)),
        ("March 3rd", "March 3rd", dt.date(2027, 3, 3)),
        ("on 3 March 2027", "3 March 2027", dt.date(2027, 3, 3)),
        ("the 3rd of march", "the 3rd of march", dt.date(2027, 3, 3)),
        ("Dec 24, 2026", "Dec 24, 2026", dt.date(2026, 12, 24)),
        ("December 1", "December 1", dt.date(2026, 12, 1)),
        ("on 2026-12-01", "2026-12-01", dt.date(2026, 12, 1)),
        ("in 3 days", "in 3 days", dt.date(2026, 11, 28)),
        ("in two weeks", "in two weeks", dt.date(2026, 12, 9)),
        ("2 days ago", "2 days ago", dt.date(2026, 11, 23)),
        ("next month", "next month", dt.date(2026, 12, 25)),
        ("on 31.12.2026", "31.12.2026", dt.date(2026, 12, 31)),
    ],
)
def test_dates(text: str, span: str, expected: dt.date) -> None:
    ent = only(DateExtractor(today=lambda: TODAY).extract(text))
    assert (ent.text, ent.value) == (span, expected)
    assert text[ent.start : ent.end] == span


@pytest.mark.parametrize(
    "text", ["send 50 euros", "I have 50", "may I pay", "February 30", "2026-13-01", "march on"]
)
def test_numbers_and_words_are_not_dates(text: str) -> None:
    assert DateExtractor(today=lambda: TODAY).extract(text) == []


def test_lookup_exact_synonym_and_fuzzy() -> None:
    lookup = LookupExtractor(
        {"account": ["checking", "savings", "credit card"]},
        {"savings account": "savings", "current account": "checking"},
        known_words={"saving", "move"},
    )
    found = lookup.extract("move it from my current account to savngs or the Credit Card")
    assert [(e.text, e.value, e.extractor) for e in found] == [
        ("current account", "checking", "lookup"),
        ("savngs", "savings", "fuzzy"),
        ("Credit Card", "credit card", "lookup"),
    ]
    assert found[1].confidence < 1.0


def test_fuzzy_skips_short_and_known_words() -> None:
    lookup = LookupExtractor({"account": ["savings", "isa"]}, known_words={"saving"})
    assert lookup.extract("I am saving money") == []
    assert lookup.extract("my iso") == []  # under four characters: never fuzzy


def test_fuzzy_threshold_is_configurable() -> None:
    strict = LookupExtractor({"account": ["savings"]}, fuzzy_threshold=99)
    assert strict.extract("savngs") == []


def test_lookup_normalise_for_tagged_spans() -> None:
    lookup = LookupExtractor({"account": ["savings"]}, {"rainy day fund": "savings"})
    assert lookup.normalise("account", "Rainy Day Fund") == "savings"
    assert lookup.normalise("account", "savngs") == "savings"
    assert lookup.normalise("account", "pizza") is None


def test_regex_extractor() -> None:
    rx = RegexExtractor({"iban": [r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"], "ref": [r"REF-\d+"]})
    found = rx.extract("pay REF-12 to DE44500105175407324931")
    assert [(e.entity, e.text) for e in found] == [
        ("ref", "REF-12"),
        ("iban", "DE44500105175407324931"),
    ]


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("move 5 euros from checking", "from"),
        ("move 5 euros from my checking", "from"),
        ("take it out of the checking", "from"),
        ("put it into checking", "to"),
        ("send to my checking", "to"),
        ("what is in checking", None),
    ],
)
def test_roles_from_cue_words(text: str, role: str | None) -> None:
    start = text.index("checking")
    ent = Entity("account", "checking", start, start + 8, "checking")
    assert RoleResolver({"account"}).resolve(text, [ent])[0].role == role


def test_roles_keep_given_roles_and_other_entities() -> None:
    text = "from checking"
    given = Entity("account", "checking", 5, 13, "checking", role="to")
    other = Entity("payee", "checking", 5, 13, "checking")
    resolved = RoleResolver({"account"}).resolve(text, [given, other])
    assert [e.role for e in resolved] == ["to", None]


def test_rule_extractors_bundle_and_overlaps() -> None:
    rules = RuleExtractors(lookup_tables={"account": ["savings"]}, today=lambda: TODAY)
    found = resolve_overlaps(rules.extract("move 50 euros to savings tomorrow"))
    assert [(e.entity, e.text) for e in found] == [
        ("money", "50 euros"),
        ("account", "savings"),
        ("date", "tomorrow"),
    ]
    assert rules.normalise("amount", "50 euros", "money") == Money(Decimal("50"), "EUR")
    assert rules.normalise("when", "tomorrow", "date") == dt.date(2026, 11, 26)
    assert rules.normalise("n", "twelve", "number") == 12
    assert rules.normalise("account", "savngs", None) == "savings"
    assert rules.normalise("thing", "pizza", None) == "pizza"


def test_tokenizer_keeps_offsets() -> None:
    text = "Send €1,250.50 to Bob's savings, o'clock"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == [
        "Send",
        "€",
        "1,250.50",
        "to",
        "Bob",
        "'s",
        "savings",
        ",",
        "o'clock",
    ]
    assert all(text[t.start : t.end] == t.text for t in tokens)
