"""Rasa 3.x NLU YAML: reading, errors with lines, writing and round trips."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    load_training_data,
)
from intentbridge.understanding.rasa import parse_rasa_yaml, to_rasa_yaml

SAMPLE = textwrap.dedent(
    """\
    version: "3.1"
    nlu:
    - intent: transfer_money
      examples: |
        - move [50 euros](amount) from [checking]{"entity": "account", "role": "from"}
        - send [20 bucks](amount) to my [savings account](account:savings)
    - intent: greet
      metadata:
        source: hand-written
      examples: |
        - hi

        - hello
    - synonym: checking
      examples: |
        - current account
    - lookup: account
      examples: |
        - checking
        - savings
    - regex: iban
      examples: |
        - [A-Z]{2}\\d{2}[A-Z0-9]{11,30}
    """
)


def test_reads_intents_synonyms_lookups_and_regexes() -> None:
    data = parse_rasa_yaml(SAMPLE)
    assert data.examples == [
        TrainingExample(
            "move 50 euros from checking",
            "transfer_money",
            (
                EntitySpan(5, 13, "amount", "50 euros"),
                EntitySpan(19, 27, "account", "checking", role="from"),
            ),
        ),
        TrainingExample(
            "send 20 bucks to my savings account",
            "transfer_money",
            (EntitySpan(5, 13, "amount", "20 bucks"), EntitySpan(20, 35, "account", "savings")),
        ),
        TrainingExample("hi", "greet"),
        TrainingExample("hello", "greet"),
    ]
    assert data.synonyms == {"current account": "checking"}
    assert data.lookup_tables == {"account": ["checking", "savings"]}
    assert data.regexes == {"iban": [r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}"]}


def test_version_is_optional_and_empty_file_is_empty() -> None:
    assert parse_rasa_yaml("nlu:\n- intent: a\n  examples: |\n    - x\n").intents == ("a",)
    assert parse_rasa_yaml("").examples == []


def test_examples_may_be_a_yaml_list() -> None:
    data = parse_rasa_yaml("nlu:\n- intent: a\n  examples:\n  - hi [there](who)\n")
    assert data.examples[0].entities == (EntitySpan(3, 8, "who", "there"),)


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - bad [x\n", 5, "unbalanced '['"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    no dash\n", 5, "must start with '- '"),
        ("version: '3.1'\nstories: []\n", 2, "unknown key 'stories'"),
        ("nlu:\n- intent: a\n  exmples: |\n    - hi\n", 3, "unknown key 'exmples'"),
        ("nlu:\n- intent: a\n", 2, "has no 'examples'"),
        ("nlu:\n- intent: a\n  synonym: b\n  examples: |\n    - x\n", 2, "exactly one of"),
        ("nlu:\n- examples: |\n    - x\n", 2, "exactly one of"),
        ("nlu:\n- just a string\n", 2, "must be a mapping"),
        ("nlu: {}\n", 1, "must be a list"),
        ("nlu:\n- intent: a\n  examples: |\n    - x\n  bad: ]\n", 5, "invalid YAML"),
        ("nlu:\n- regex: r\n  examples: |\n    - ok\n    - ([\n", 5, "invalid regex"),
        ("- intent: a\n", 1, "top level must be a mapping"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, source: str, line: int, message: str) -> None:
    f = tmp_path / "nlu.yml"
    f.write_text(source, encoding="utf-8")
    with pytest.raises(TrainingDataError) as info:
        load_training_data(f)
    assert message in str(info.value)
    assert info.value.path == str(f)
    assert info.value.line == line


def test_write_then_read_is_identity() -> None:
    data = parse_rasa_yaml(SAMPLE)
    again = parse_rasa_yaml(to_rasa_yaml(data))
    assert again.examples == data.examples
    assert again.synonyms == data.synonyms
    assert again.lookup_tables == data.lookup_tables
    assert again.regexes == data.regexes


def test_names_that_look_like_other_yaml_types_stay_strings() -> None:
    data = TrainingData(examples=[TrainingExample("ok", "yes"), TrainingExample("1", "1.0")])
    assert parse_rasa_yaml(to_rasa_yaml(data)).intents == ("1.0", "yes")


# --- property: TrainingData → YAML → TrainingData ------------------------------------

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé0123456789_", min_size=1, max_size=8)
_text_char = st.characters(
    blacklist_characters="[]", blacklist_categories=("Cs", "Cc", "Zl", "Zp", "Zs")
)
_chunk = st.text(alphabet=_text_char, min_size=1, max_size=8)


@st.composite
def examples(draw: st.DrawFn) -> TrainingExample:
    words = draw(st.lists(_chunk, min_size=1, max_size=5))
    text = " ".join(words)
    spans = []
    pos = 0
    for w in words:
        if draw(st.booleans()):
            role = draw(st.none() | _word)
            spans.append(
                EntitySpan(
                    pos, pos + len(w), draw(_word), draw(st.sampled_from([w, "canon"])), role=role
                )
            )
        pos += len(w) + 1
    return TrainingExample(text, draw(_word), tuple(spans))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(examples(), max_size=6),
    st.dictionaries(_word, _word, max_size=3),
    st.dictionaries(_word, st.lists(_word, min_size=1, max_size=3, unique=True), max_size=2),
)
def test_yaml_round_trip_property(
    exs: list[TrainingExample], synonyms: dict[str, str], lookups: dict[str, list[str]]
) -> None:
    data = TrainingData(examples=exs, synonyms=synonyms, lookup_tables=lookups)
    again = parse_rasa_yaml(to_rasa_yaml(data))
    # examples come back grouped by intent, in first-seen order
    order = list(dict.fromkeys(ex.intent for ex in exs))
    assert again.examples == sorted(exs, key=lambda ex: order.index(ex.intent))
    assert again.synonyms == synonyms
    assert again.lookup_tables == lookups
