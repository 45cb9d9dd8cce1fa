"""Inline annotations: the three forms, their errors, and format→parse round trips."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.annotation import format_annotated, parse_annotated
from intentbridge.understanding.data import EntitySpan


def test_plain_form_value_is_the_text() -> None:
    text, spans = parse_annotated("move [50 euros](amount) now")
    assert text == "move 50 euros now"
    assert spans == (EntitySpan(5, 13, "amount", "50 euros"),)


def test_synonym_form_sets_the_value() -> None:
    text, spans = parse_annotated("from my [savings account](account:savings)")
    assert text == "from my savings account"
    assert spans == (EntitySpan(8, 23, "account", "savings"),)


def test_json_form_carries_role_and_group() -> None:
    text, spans = parse_annotated(
        'from [checking]{"entity": "account", "role": "from"} to '
        '[savings]{"entity": "account", "role": "to", "group": "2", "value": "sav"}'
    )
    assert text == "from checking to savings"
    assert spans == (
        EntitySpan(5, 13, "account", "checking", role="from"),
        EntitySpan(17, 24, "account", "sav", role="to", group="2"),
    )


def test_json_form_allows_braces_inside_strings() -> None:
    _, spans = parse_annotated('[x]{"entity": "e", "value": "a}b"}')
    assert spans[0].value == "a}b"


def test_parentheses_and_braces_in_plain_text_are_text() -> None:
    text, spans = parse_annotated("pay (urgent) {asap} [5 euros](amount)")
    assert text == "pay (urgent) {asap} 5 euros"
    assert spans[0].entity == "amount"


@pytest.mark.parametrize(
    ("annotated", "message"),
    [
        ("move [50 euros to savings", "unbalanced '['"),
        ("move 50 euros] to savings", "unexpected ']'"),
        ("move [50 [euros]](amount)", "unbalanced '['"),
        ("move [50 euros] to savings", "must be followed by"),
        ("move [50 euros](amount to savings", "unbalanced '('"),
        ('move [50 euros]{"entity": "amount" to savings', "unbalanced '{'"),
        ("move [50 euros]{entity: amount}", "invalid JSON"),
        ('move [50 euros]{"value": "50"}', 'needs a string "entity"'),
        ('move [50 euros]{"entity": "a", "colour": "red"}', "unknown annotation key"),
        ("move [](amount)", "empty annotation"),
        ("move [50 euros]()", "bad entity name"),
        ("move [50 euros](amount:)", "empty value"),
        # a canonical value is a string or a number
        ('[paris]{"entity": "city", "value": {"a": 1}}', '"value" in [paris]{'),
        ('[paris]{"entity": "city", "value": ["paris"]}', '"value" in [paris]{'),
        ('[paris]{"entity": "city", "value": true}', '"value" in [paris]{'),
        ('[paris]{"entity": "city", "value": NaN}', '"value" in [paris]{'),
    ],
)
def test_broken_annotations_are_errors(annotated: str, message: str) -> None:
    with pytest.raises(TrainingDataError, match=re.escape(message)) as info:
        parse_annotated(annotated, path="nlu.yml", line=7)
    assert info.value.line == 7
    assert info.value.path == "nlu.yml"


@pytest.mark.parametrize(
    ("annotated", "value"),
    [
        ('[paris]{"entity": "city", "value": null}', "paris"),  # null: no canonical value
        ("[new york](city: NYC)", "NYC"),
        ("[new york](city:NYC )", "NYC"),
        ('[five]{"entity": "n", "value": 5}', "5"),
        ('[half]{"entity": "n", "value": 0.5}', "0.5"),
    ],
)
def test_canonical_values_are_what_the_annotation_says(annotated: str, value: str) -> None:
    _, spans = parse_annotated(annotated)
    assert spans[0].value == value


@pytest.mark.parametrize(
    ("annotated", "message"),
    [
        ("it costs [5](price#usd)", "entity name 'price#usd' contains '#'"),
        ('it costs [5]{"entity": "price#usd"}', "entity name 'price#usd' contains '#'"),
        ('it costs [5]{"entity": "price", "role": "a#b"}', "role 'a#b' of entity 'price'"),
    ],
)
def test_hash_in_entity_or_role_names_is_an_error(annotated: str, message: str) -> None:
    """The tagger's labels are entity#role: "price#usd" came back as price, role usd."""
    with pytest.raises(TrainingDataError, match=re.escape(message)) as info:
        parse_annotated(annotated, path="nlu.yml", line=3)
    assert (info.value.path, info.value.line) == ("nlu.yml", 3)
    assert info.value.hint is not None and "role" in info.value.hint
    with pytest.raises(TrainingDataError, match="contains '#'"):
        format_annotated("5", [EntitySpan(0, 1, "price#usd", "5")])


@pytest.mark.parametrize(
    "annotated",
    [
        '[5]{"entity": "n", "value": ' + "1" * 5000 + "}",  # past int's 4,300 digits
        '[5]{"entity": "n", "value": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_json_python_cannot_read_is_a_training_data_error(annotated: str) -> None:
    with pytest.raises(TrainingDataError, match="invalid JSON"):
        parse_annotated(annotated)


def test_format_picks_the_shortest_faithful_form() -> None:
    text = "move 50 euros from my savings account"
    spans = [
        EntitySpan(5, 13, "amount", "50 euros"),
        EntitySpan(22, 37, "account", "savings", role="from"),
    ]
    assert format_annotated(text, spans) == (
        'move [50 euros](amount) from my [savings account]{"entity": "account", '
        '"value": "savings", "role": "from"}'
    )
    assert format_annotated("my cur acct", [EntitySpan(3, 11, "account", "checking")]) == (
        "my [cur acct](account:checking)"
    )


def test_format_refuses_what_cannot_be_written() -> None:
    with pytest.raises(TrainingDataError, match="overlapping"):
        format_annotated("abc", [EntitySpan(0, 2, "x", "ab"), EntitySpan(1, 3, "y", "bc")])
    with pytest.raises(TrainingDataError, match="reserves"):
        format_annotated("a [b]", [])


# --- property: format then parse gives back the text and spans --------------------

_plain = st.text(
    alphabet=st.characters(blacklist_characters="[]\n\r", blacklist_categories=("Cs",)), max_size=12
)
_inner = st.text(
    alphabet=st.characters(blacklist_characters="[]\n\r", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=10,
)
_name = st.text(
    alphabet=st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda name: name == name.strip())  # names are read stripped: "0\n" is "0"
# entity and role names: '#' separates them in the tagger's labels
_label_name = _name.filter(lambda name: "#" not in name)
_optional = st.none() | _label_name


@st.composite
def annotated_examples(draw: st.DrawFn) -> tuple[str, list[EntitySpan]]:
    parts: list[str] = []
    spans: list[EntitySpan] = []
    pos = 0
    for _ in range(draw(st.integers(0, 3))):
        before = draw(_plain)
        covered = draw(_inner)
        parts.append(before)
        pos += len(before)
        value = draw(st.none() | _name)
        spans.append(
            EntitySpan(
                pos,
                pos + len(covered),
                draw(_label_name),
                covered if value is None else value,
                role=draw(_optional),
                group=draw(_optional),
            )
        )
        parts.append(covered)
        pos += len(covered)
    parts.append(draw(_plain))
    return "".join(parts), spans


@given(annotated_examples())
def test_format_then_parse_round_trips(example: tuple[str, list[EntitySpan]]) -> None:
    text, spans = example
    assert parse_annotated(format_annotated(text, spans)) == (text, tuple(spans))
