"""Rasa 3.x NLU YAML: reading, errors with lines, writing and round trips."""

from __future__ import annotations

import logging
import re
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.annotation import format_annotated, parse_annotated
from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    load_training_data,
    save_training_data,
)
from intentbridge.understanding.rasa import jsonl_loss_note, parse_rasa_yaml, to_rasa_yaml

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
        ("version: '3.1'\nstorys: []\n", 2, "unknown key 'storys'"),
        ("? [a, b]\n: c\nnlu: []\n", 1, "a key must be a name"),
        ("nlu:\n- intent: a\n  examples: >\n    - hi\n    - hello\n", 3, "not a folded one"),
        (
            "nlu:\n- intent: greet\n  intent: bye\n  examples: |\n    - hi\n",
            3,
            "duplicate key 'intent'",
        ),
        ("nlu: []\nnlu: []\n", 2, "duplicate key 'nlu'"),
        ("nlu:\n- intent: null\n  examples: |\n    - hi\n", 2, "'intent' is empty or null"),
        ("nlu:\n- intent: a\n  examples:\n  - text:\n", 4, "must be a string or {text"),
        ("nlu:\n- intent: a\n  examples:\n  - metadata: {}\n", 4, "example has no 'text'"),
        ("nlu:\n- intent: a\n  examples:\n  - text: hi\n    txt: x\n", 5, "unknown key 'txt'"),
        ("nlu:\n- intent: a\n  examples:\n  - text: hi [x\n", 4, "unbalanced '['"),
        ("nlu:\n- intent: a\n  examples:\n  - text: |\n      hi [x\n", 5, "unbalanced '['"),
        ("stories: []\nbogus: 1\n", 2, "unknown key 'bogus'"),
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


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - caf\xe9\n".encode("latin-1"), 4, None, "UTF-8"),
        (b'nlu:\n- intent: a\n  examples:\n  - text: "x \\ud800"\n', 4, "text", "surrogate"),
        (
            b'nlu:\n- intent: a\n  examples: |\n    - [x]{"entity": "e\\udc80"}\n',
            4,
            "entities",
            "surrogate",
        ),
    ],
)
def test_bytes_and_escapes_that_are_no_text_name_the_line(
    tmp_path: Path, content: bytes, line: int, field: str | None, message: str
) -> None:
    """The same reading and checks as JSONL: a clear error, never a UnicodeError later."""
    f = tmp_path / "nlu.yml"
    f.write_bytes(content)
    with pytest.raises(TrainingDataError, match=message) as info:
        load_training_data(f)
    assert (info.value.path, info.value.line, info.value.field) == (str(f), line, field)


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    f = tmp_path / "nlu.yml"
    f.write_bytes(b"\xef\xbb\xbfnlu:\n- intent: a\n  examples: |\n    - hi\n")
    assert load_training_data(f).examples == [TrainingExample("hi", "a")]


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


def test_folded_examples_error_hints_at_literal_block() -> None:
    with pytest.raises(TrainingDataError) as info:
        parse_rasa_yaml("nlu:\n- intent: a\n  examples: >\n    - hi\n    - hello\n")
    assert info.value.hint is not None and "one example" in info.value.hint


def test_block_holding_list_form_examples_hints_at_removing_the_bar() -> None:
    source = "nlu:\n- intent: a\n  examples: |\n    - text: |\n        bye\n"
    with pytest.raises(TrainingDataError) as info:
        parse_rasa_yaml(source)
    assert info.value.hint is not None and "remove the '|'" in info.value.hint


# --- a Rasa 3 project -----------------------------------------------------------------

STORIES = "version: '3.1'\nstories:\n- story: s\n  steps:\n  - intent: greet\n"
RULES = "version: '3.1'\nrules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_hi\n"
DOMAIN = textwrap.dedent(
    """\
    version: "3.1"
    intents: [greet]
    entities: [name]
    slots:
      name: {type: text, mappings: [{type: from_entity, entity: name}]}
    responses:
      utter_hi:
      - text: "Hi!"
    actions: [action_hello]
    forms: {}
    e2e_actions: []
    session_config: {session_expiration_time: 60}
    config: {store_entities_as_slots: true}
    """
)


def test_a_rasa_project_folder_loads_skipping_stories_rules_and_domain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "nlu.yml").write_text(SAMPLE, encoding="utf-8")
    (tmp_path / "data" / "stories.yml").write_text(STORIES, encoding="utf-8")
    (tmp_path / "data" / "rules.yml").write_text(RULES, encoding="utf-8")
    (tmp_path / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="intentbridge.understanding.rasa"):
        data = load_training_data([tmp_path / "data", tmp_path / "domain.yml"])
    assert data.examples == parse_rasa_yaml(SAMPLE).examples
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 3  # one line a skipping file
    assert any("rules.yml: skipped rules" in n for n in notes)
    assert any("domain.yml: skipped intents, entities, slots, responses" in n for n in notes)


def test_responses_in_an_nlu_file_are_skipped() -> None:
    source = SAMPLE + "responses:\n  utter_greet:\n  - text: Hey!\n"
    assert parse_rasa_yaml(source).examples == parse_rasa_yaml(SAMPLE).examples


def test_reads_rasa_examples_with_metadata() -> None:
    source = textwrap.dedent(
        """\
        nlu:
        - intent: greet
          metadata:
            author: me
          examples:
          - text: |
              hi there
            metadata:
              sentiment: neutral
          - text: hello [bob](name)
          - text: "  kept exactly\\u2028 "
        """
    )
    assert parse_rasa_yaml(source).examples == [
        TrainingExample("hi there", "greet"),
        TrainingExample("hello bob", "greet", (EntitySpan(6, 9, "name", "bob"),)),
        TrainingExample("  kept exactly\u2028 ", "greet"),
    ]


# --- writing what a block cannot hold --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["bell\x07x", "nul\x00x", "a\rb", "a\x85b", "a\u2028b", "x\ufffey", "two\nlines", " pad ", ""],
)
def test_convert_keeps_texts_a_block_cannot_hold(tmp_path: Path, text: str) -> None:
    data = TrainingData(examples=[TrainingExample(text, "odd"), TrainingExample("hi", "greet")])
    save_training_data(data, tmp_path / "nlu.jsonl")
    save_training_data(load_training_data(tmp_path / "nlu.jsonl"), tmp_path / "nlu.yml")
    assert load_training_data(tmp_path / "nlu.yml").examples == data.examples


def test_examples_a_block_cannot_hold_use_rasas_list_form() -> None:
    bob = EntitySpan(6, 9, "name", "bob")
    data = TrainingData(examples=[TrainingExample("bell\x07 bob", "odd", (bob,))])
    assert '  - text: "bell\\a [bob](name)"' in to_rasa_yaml(data)


def test_unwritable_example_error_names_the_example() -> None:
    data = TrainingData(examples=[TrainingExample("ok", "a"), TrainingExample("go to [x]", "b")])
    with pytest.raises(TrainingDataError, match=r"example 2 \('go to \[x\]', intent 'b'\)"):
        to_rasa_yaml(data)


def test_writer_refuses_an_example_that_would_read_back_differently() -> None:
    """Whatever the annotation writer does, YAML never silently holds different data."""
    ex = TrainingExample("0", "i", (EntitySpan(0, 1, "e\n", "0"),))
    data = TrainingData(examples=[ex])
    if parse_annotated(format_annotated(ex.text, ex.entities)) == (ex.text, ex.entities):
        assert parse_rasa_yaml(to_rasa_yaml(data)).examples == [ex]
    else:
        with pytest.raises(TrainingDataError, match=r"example 1 \('0', intent 'i'\).*differently"):
            to_rasa_yaml(data)


def test_jsonl_loss_note_names_what_is_dropped() -> None:
    data = parse_rasa_yaml(SAMPLE)
    note = jsonl_loss_note(data)
    assert note is not None
    assert "1 synonym: 'current account' → 'checking'" in note
    assert "1 lookup table: 'account' (2 values)" in note
    assert "1 regex: 'iban' (1 pattern)" in note
    assert "Keep the YAML file as the source" in note
    assert jsonl_loss_note(TrainingData(examples=data.examples)) is None
    many = TrainingData(lookup_tables={f"t{i}": ["v"] for i in range(12)})
    assert "and 2 more" in (jsonl_loss_note(many, limit=10) or "")


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


# --- property: convert JSONL → YAML → JSONL, as `intentbridge nlu convert` does ---------

# every character a JSONL file can hold (no lone surrogates), brackets aside, with the
# ones YAML treats specially drawn often
_awkward = st.sampled_from(
    list("\x00\x07\x1b\x7f\t\r\n\x85\u2028\u2029\ufeff\ufffe\xa0 #:-\"'\\{}()é😀")
)
_any_char = st.characters(blacklist_characters="[]", blacklist_categories=("Cs",)) | _awkward
_any_text = st.text(alphabet=_any_char, max_size=6)
_any_name = st.text(alphabet=_any_char, min_size=1, max_size=6)
# annotation.py writes an entity name ending in "\n" in the short form, which reads it
# back stripped; to_rasa_yaml refuses those (see the test below), so leave them out here
_entity_name = _any_name.filter(lambda name: not name.endswith("\n") and "#" not in name)
# '#' joins entity and role in the tagger's labels, so names may not hold it (data.py)
_role = _any_text.filter(lambda role: "#" not in role)


@st.composite
def awkward_examples(draw: st.DrawFn) -> TrainingExample:
    """Any text with non-overlapping spans carrying any entity, value, role and group."""
    pieces = draw(st.lists(st.tuples(_any_text, _any_name, st.booleans()), max_size=4))
    text = ""
    spans = []
    for gap, covered, annotate in pieces:
        text += gap
        if annotate:
            spans.append(
                EntitySpan(
                    len(text),
                    len(text) + len(covered),
                    draw(_entity_name),
                    draw(st.just(covered) | _any_text),
                    role=draw(st.none() | _role),
                    group=draw(st.none() | _any_text),
                )
            )
        text += covered
    return TrainingExample(text, draw(_any_name), tuple(spans))


@settings(max_examples=150, deadline=None)
@given(st.lists(awkward_examples(), max_size=6))
def test_convert_jsonl_to_yaml_and_back_keeps_every_example(exs: list[TrainingExample]) -> None:
    """Texts, intents, spans, values, roles and groups survive; intents come back grouped."""
    data = TrainingData(examples=exs)
    with tempfile.TemporaryDirectory() as tmp:
        jsonl, yml, back = Path(tmp, "a.jsonl"), Path(tmp, "b.yml"), Path(tmp, "c.jsonl")
        save_training_data(data, jsonl)
        save_training_data(load_training_data([jsonl]), yml)
        save_training_data(load_training_data([yml]), back)
        again = load_training_data([back]).examples
    order = list(dict.fromkeys(ex.intent for ex in exs))
    assert again == sorted(exs, key=lambda ex: order.index(ex.intent))


_patterns = st.one_of(_any_name.map(re.escape), st.sampled_from([r"\d+", "[A-Z]{2}", "a|b"]))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(awkward_examples(), max_size=3),
    st.dictionaries(_any_text, _any_name, max_size=3),
    st.dictionaries(
        _any_name, st.lists(_any_text, min_size=1, max_size=3, unique=True), max_size=2
    ),
    st.dictionaries(
        _any_name, st.lists(_patterns, min_size=1, max_size=2, unique=True), max_size=2
    ),
)
def test_convert_yaml_to_jsonl_and_back_keeps_examples_and_names_the_tables_it_drops(
    exs: list[TrainingExample],
    synonyms: dict[str, str],
    lookups: dict[str, list[str]],
    regexes: dict[str, list[str]],
) -> None:
    """YAML keeps every table exactly; JSONL has no place for them (documented, by design).

    So YAML → JSONL → YAML keeps the examples only, and :func:`jsonl_loss_note` names
    each synonym, lookup table and regex that the JSONL step dropped.
    """
    data = TrainingData(examples=exs, synonyms=synonyms, lookup_tables=lookups, regexes=regexes)
    with tempfile.TemporaryDirectory() as tmp:
        yml, jsonl, back = Path(tmp, "a.yml"), Path(tmp, "b.jsonl"), Path(tmp, "c.yml")
        save_training_data(data, yml)
        from_yaml = load_training_data([yml])
        save_training_data(from_yaml, jsonl)
        save_training_data(load_training_data([jsonl]), back)
        again = load_training_data([back])
    assert (from_yaml.synonyms, from_yaml.lookup_tables, from_yaml.regexes) == (
        synonyms,
        lookups,
        regexes,
    )
    assert again.examples == from_yaml.examples
    assert (again.synonyms, again.lookup_tables, again.regexes) == ({}, {}, {})
    note = jsonl_loss_note(from_yaml, limit=10)
    assert (note is None) == (not synonyms and not lookups and not regexes)
    for name in [*synonyms, *lookups, *regexes]:
        assert repr(name) in (note or "")
