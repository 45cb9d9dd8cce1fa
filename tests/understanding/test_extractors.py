"""Rule extractors: money, numbers, dates, lookup with synonyms and typos, regexes, roles."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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
        # a range in words: the currency belongs to the last amount, as with "or"
        ("between one and two dollars", "two dollars", "2", "USD"),
        ("one or two dollars", "two dollars", "2", "USD"),
        ("Between Five And Ten Euros", "Ten Euros", "10", "EUR"),
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


# --- amounts of any size, and number words that are well-formed or not numbers -----

#: Amounts from a quadrillion on are not money (extractors/money.py).
MAX_AMOUNT = Decimal(10) ** 15


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("send 10000000000000000000000000000 euros", 10**28),
        ("$" + "1" * 29, int("1" * 29)),
        ("9999999999999999999999999999.5 euros", Decimal("9999999999999999999999999999.5")),
        ("99999999999999999999999999k dollars", (10**26 - 1) * 1000),
        ("1000000000000000 euros", 10**15),
    ],
)
def test_huge_amounts_are_exact_numbers_but_not_money(text: str, number: int | Decimal) -> None:
    """Past 28 digits the default decimal context used to raise; such sums are no money."""
    assert MoneyExtractor().extract(text) == []
    assert parse_money(text) is None
    assert only(NumberExtractor().extract(text)).value == number
    below = only(MoneyExtractor().extract("send 999999999999999.99 euros"))
    assert below.value == Money(Decimal("999999999999999.99"), "EUR")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a three", 3),  # the article, not "one plus three"
        ("twenty-five hundred", 2500),
        ("a thousand and one", 1001),
        ("two million three hundred thousand and five", 2_300_005),
        ("one hundred and five thousand", 105_000),
        ("nine hundred ninety-nine billion", 999_000_000_000),
    ],
)
def test_number_words_compose(text: str, value: int) -> None:
    assert only(NumberExtractor().extract(text)).value == value


@pytest.mark.parametrize(
    "text",
    [
        "one billion billion billion billion",
        "five five",
        "one two three",
        "twenty twenty",
        "one thousand million",
        "zero zero seven",
        "hundred hundred",
    ],
)
def test_runs_of_number_words_that_are_no_cardinal_are_not_numbers(text: str) -> None:
    assert NumberExtractor().extract(f"about {text} of them") == []
    assert MoneyExtractor().extract(f"{text} dollars") == []


def test_one_and_two_is_no_number_but_its_last_part_is_money() -> None:
    """As with "one or two dollars": the currency belongs to the amount next to it."""
    assert NumberExtractor().extract("about one and two of them") == []
    assert only(MoneyExtractor().extract("one and two dollars")).text == "two dollars"


_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_thousand(n: int, sep: str) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n:
            words.append("and")
    if n >= 20:
        words.append(_TENS[n // 10] + (sep + _ONES[n % 10] if n % 10 else ""))
    elif n:
        words.append(_ONES[n])
    return words


def in_words(n: int, sep: str = "-") -> str:
    """``n`` (below a trillion) as English words: "one million two hundred and five"."""
    if n == 0:
        return "zero"
    words: list[str] = []
    for scale, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (1, "")):
        if n >= scale:
            words += _below_thousand(n // scale, sep) + ([name] if name else [])
            n %= scale
    return " ".join(words)


@given(st.integers(0, 10**12 - 1), st.sampled_from(["-", " "]))
def test_numbers_written_in_words_read_back(n: int, sep: str) -> None:
    ent = only(NumberExtractor().extract(f"about {in_words(n, sep)} of them"))
    assert ent.value == n


_WORDS = [
    " ", "  ", "-", ",", ".", "k", " k", " million", "mn", "$", "€", "US$", "EUR ",
    " euros", " dollars", " bucks", "one", "a", "an", "and", "a half", "twenty",
    "hundred", "thousand", "billion", "dozen", "zero", "nine", "ten", "1e5", "½",
]  # fmt: skip
_FRAGMENTS = st.one_of(
    st.sampled_from(_WORDS),
    st.integers(0, 10**60).map(str),
    st.decimals(min_value=0, allow_nan=False, allow_infinity=False).map(str),
    st.text(max_size=4),
)
_RULE_TEXT = st.lists(_FRAGMENTS, max_size=12).map("".join)


@settings(max_examples=300)
@given(_RULE_TEXT)
def test_rule_extractors_never_raise_and_values_match_their_digits(text: str) -> None:
    for ent in RuleExtractors().extract(text):
        assert text[ent.start : ent.end] == ent.text
        if ent.entity == "money":
            assert isinstance(ent.value, Money)
            assert ent.value.amount.is_finite()
            assert abs(ent.value.amount) < MAX_AMOUNT
            # a sign is kept where one was written, and only there
            signed = any(c in ent.text for c in "-\u2013\u2212")
            assert ent.value.amount >= 0 or signed or ent.text.lower().startswith("minus")
        if ent.entity == "number":
            assert isinstance(ent.value, int | Decimal)
            assert isinstance(ent.value, int) or ent.value.is_finite()
            if ent.text.isdigit():
                assert ent.value == int(ent.text)


@given(
    st.integers(0, 10**40),
    st.sampled_from(["{:d}", "{:,d}", "{:_d}"]),
    st.sampled_from(["send {} euros", "€{} please", "{} dollars to bob"]),
)
def test_amounts_of_any_size_are_read_exactly(n: int, style: str, message: str) -> None:
    # "1.234.567" is continental grouping; a single dot group ("1.234") is a decimal
    assume(style != "{:_d}" or n >= 10**6)
    text = message.format(style.format(n).replace("_", "."))
    money = MoneyExtractor().extract(text)
    if n < MAX_AMOUNT:
        assert only(money).value.amount == n
    else:
        assert money == []
    assert only(NumberExtractor().extract(text)).value == n


# --- signs and exponents: kept, or no number at all; never silently dropped ----------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("move -5 euros to savings", "-5 euros"),
        ("move €-5 to savings", "€-5"),
        ("move -€5 to savings", "-€5"),
        ("move minus 5 euros to savings", "minus 5 euros"),
        ("move EUR -5 to savings", "EUR -5"),
        ("move \u22125 € to savings", "\u22125 €"),
    ],
)
def test_a_minus_before_an_amount_keeps_it_negative(text: str, span: str) -> None:
    ent = only(MoneyExtractor().extract(text))
    assert (ent.text, ent.value) == (span, Money(Decimal("-5"), "EUR"))
    assert text[ent.start : ent.end] == span
    assert parse_money(span) == Money(Decimal("-5"), "EUR")
    assert parse_money("-5") == Money(Decimal("-5"), None)
    # and a dash that is no sign is not read as one
    for other, amount in (("5 - 3 euros", 3), ("pay 10 euros - thanks", 10), ("twenty-five €", 25)):
        assert only(MoneyExtractor().extract(other)).value == Money(Decimal(amount), "EUR")


@given(
    st.integers(1, 9999),
    st.integers(1, 30),
    st.sampled_from(["e-", "E-", "e+", "E+", "e\u2212"]),
    st.sampled_from(["{} euros", "€{}", "send {} dollars", "{}"]),
)
def test_exponent_notation_is_no_number_on_either_side(
    mantissa: int, exponent: int, mark: str, message: str
) -> None:
    """ "1e-3 euros" is neither 1 nor 3 euros (unsigned "1e3" was already refused)."""
    text = message.format(f"{mantissa}{mark}{exponent}")
    assert MoneyExtractor().extract(text) == []
    assert NumberExtractor().extract(text) == []
    assert parse_money(text) is None


@given(
    st.decimals(min_value="0.01", max_value="999999", places=2),
    st.sampled_from(["-{} euros", "€-{}", "-€{}", "minus {} euros", "EUR -{}", "-{}$"]),
)
def test_signed_amounts_are_read_with_their_sign(amount: Decimal, form: str) -> None:
    text = "move " + form.format(amount) + " to savings"
    ent = only(MoneyExtractor().extract(text))
    assert ent.value.amount == -amount


# --- ranges: two numbers, each with its own span --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("between one and two", [(1, "one"), (2, "two")]),
        ("one or two", [(1, "one"), (2, "two")]),
        ("two to three", [(2, "two"), (3, "three")]),
        ("between 5 and ten", [(5, "5"), (10, "ten")]),
        ("Between One And Two", [(1, "One"), (2, "Two")]),
        ("between twenty and thirty-five", [(20, "twenty"), (35, "thirty-five")]),
        ("between one and two and a half", [(1, "one"), (Decimal("2.5"), "two and a half")]),
        ("between a dozen and two", [(12, "a dozen"), (2, "two")]),
        (
            "between a hundred and five and two hundred",
            [(105, "a hundred and five"), (200, "two hundred")],
        ),
        (
            "between one hundred and two hundred and five",
            [(100, "one hundred"), (205, "two hundred and five")],
        ),
        # one cardinal stays one number, after "between" too
        ("between one hundred and two", [(102, "one hundred and two")]),
    ],
)
def test_a_range_of_number_words_is_two_numbers_with_their_own_spans(
    text: str, expected: list[tuple[int | Decimal, str]]
) -> None:
    found = NumberExtractor().extract(f"about {text} of them")
    assert [(e.value, e.text) for e in found] == expected
    for ent in found:
        assert f"about {text} of them"[ent.start : ent.end] == ent.text


@pytest.mark.parametrize("text", ["one and two", "one two three", "twenty and thirty"])
def test_without_between_an_and_joins_no_range(text: str) -> None:
    """ "one and two" alone is no cardinal and no range: still no number."""
    assert NumberExtractor().extract(f"about {text} of them") == []


@given(
    st.integers(0, 10**12 - 1).filter(lambda n: n % 100 != 0),
    st.integers(0, 10**12 - 1),
    st.sampled_from(["-", " "]),
)
def test_between_two_numbers_in_words_reads_both(low: int, high: int, sep: str) -> None:
    """The lower bound ends in a unit or tens word, so "and" cannot join it to the upper."""
    words = (in_words(low, sep), in_words(high, sep))
    text = f"between {words[0]} and {words[1]} euros"
    found = NumberExtractor().extract(text)
    assert [(e.value, e.text) for e in found] == [(low, words[0]), (high, words[1])]
    assert [text[e.start : e.end] for e in found] == list(words)


_RANGE_WORDS = [
    "between", "and", "or", "to", "a", "an", "half", "one", "two", "three", "twelve",
    "twenty", "ninety", "hundred", "thousand", "billion", "dozen", "zero", "5", "1,250.50",
    "2k", "x", "-", ",",
]  # fmt: skip
_RANGE_TEXT = st.lists(
    st.tuples(
        st.sampled_from(_RANGE_WORDS) | st.text(max_size=3), st.sampled_from([" ", "  ", "-", ""])
    ),
    max_size=14,
).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=400)
@given(_RANGE_TEXT)
def test_number_spans_slice_the_text_to_the_number_they_report(text: str) -> None:
    """Each span is exactly the words of its value: finite, ordered, never overlapping."""
    end = 0
    for ent in NumberExtractor().extract(text):
        assert text[ent.start : ent.end] == ent.text
        assert ent.text == ent.text.strip() and ent.start >= end
        end = ent.end
        assert isinstance(ent.value, int) or ent.value.is_finite()
        assert parse_number(ent.text) == ent.value


# --- fractions: "½ euro" is half a euro; NaN and infinity are never amounts ----------

_HALVES = {"½": Decimal("0.5"), "¼": Decimal("0.25"), "¾": Decimal("0.75")}


@pytest.mark.parametrize(
    ("text", "span", "amount"),
    [
        ("move ½ euro to savings", "½ euro", "0.50"),
        ("send €¼ now", "€¼", "0.25"),
        ("pay ¾ euros", "¾ euros", "0.75"),
        ("move 1½ euros to savings", "1½ euros", "1.50"),
        ("move 2 ½ euros to savings", "2 ½ euros", "2.50"),
        ("EUR 10¾ to Bob", "EUR 10¾", "10.75"),
        ("move -½ euro to savings", "-½ euro", "-0.50"),
        ("move minus 1¼ euros to savings", "minus 1¼ euros", "-1.25"),
    ],
)
def test_a_fraction_of_a_currency_unit_is_read_exactly(text: str, span: str, amount: str) -> None:
    ent = only(MoneyExtractor().extract(text))
    assert (ent.text, ent.value) == (span, Money(Decimal(amount), "EUR"))
    assert text[ent.start : ent.end] == span
    assert parse_money(span) == Money(Decimal(amount), "EUR")


@given(
    st.integers(0, 10**16),
    st.sampled_from(sorted(_HALVES)),
    st.sampled_from(["", " "]),
    st.sampled_from(["send {} euros", "€{} please", "EUR {} to Bob", "{}$ for bob"]),
)
def test_a_whole_number_and_a_fraction_read_back_within_the_limit(
    whole: int, fraction: str, space: str, message: str
) -> None:
    written = f"{whole}{space}{fraction}" if whole else fraction
    money = MoneyExtractor().extract(message.format(written))
    expected = whole + _HALVES[fraction]
    if expected < MAX_AMOUNT:
        assert only(money).value.amount == expected
        assert parse_money(written) == Money(expected, None)
    else:
        assert money == []


@pytest.mark.parametrize(
    "text", ["⅓ euro", "1⅛ euros", "½½ euro", "½5 euros", "1.5½ euros", "x½ euro", "½"]
)
def test_fractions_that_are_no_whole_cents_or_no_amount_are_not_money(text: str) -> None:
    assert MoneyExtractor().extract(text) == []


@given(
    st.sampled_from(
        ["NaN", "nan", "sNaN", "inf", "Inf", "Infinity", "-inf", "+Infinity", "\u221e", "-\u221e"]
    ),
    st.sampled_from(["{} euros", "€{}", "EUR {}", "send {} dollars", "{}"]),
)
def test_nan_and_infinity_are_never_money(word: str, message: str) -> None:
    """Decimal and float read them; an amount of money they are not."""
    text = message.format(word)
    assert MoneyExtractor().extract(text) == []
    assert parse_money(text) is None
    assert NumberExtractor().extract(text) == []


#: The most words a cardinal can have (31): an article, four groups of six words, three
#: scale words and "and a half".
LONGEST_CARDINAL = (
    "a twenty-five hundred and ninety-nine billion and nine hundred and ninety-nine million"
    " and nine hundred and ninety-nine thousand and nine hundred and ninety-nine and a half"
)


def test_the_longest_cardinals_still_make_a_range() -> None:
    text = f"between {LONGEST_CARDINAL} and {LONGEST_CARDINAL.removeprefix('a ')}"
    found = NumberExtractor().extract(text)
    value = Decimal("2599999999999.5")
    assert [(e.value, e.text) for e in found] == [
        (value, LONGEST_CARDINAL),
        (value, LONGEST_CARDINAL.removeprefix("a ")),
    ]


def test_a_long_run_after_between_is_no_number_and_is_read_in_linear_time() -> None:
    """Trying every "and" of 20,000 would take minutes; the run is refused at once."""
    text = "between " + " and ".join(["one"] * 20_000)
    started = time.perf_counter()
    assert NumberExtractor().extract(text) == []
    assert time.perf_counter() - started < 5
