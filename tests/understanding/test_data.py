"""Training data loaders: JSONL, directories, dispatch, and errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    load_training_data,
    save_training_data,
)

DATA = Path(__file__).parents[1] / "data" / "nlu"


def _one(entity: str, text: str = "hi") -> str:
    """A JSONL line with one entity object given as JSON text."""
    return f'{{"text": "{text}", "intent": "g", "entities": [{entity}]}}'


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_examples_and_ignores_extra_keys(tmp_path: Path) -> None:
    line = {
        "text": "play jazz",
        "intent": "PlayMusic",
        "entities": [{"start": 5, "end": 9, "entity": "genre", "value": "jazz", "extra": 1}],
        "service": "Music_1",
        "parameters": {"genre": "jazz"},
    }
    f = write_lines(
        tmp_path / "d.jsonl", json.dumps(line), "", json.dumps({"text": "hi", "intent": "greet"})
    )
    data = load_training_data(f)
    assert data.examples == [
        TrainingExample("play jazz", "PlayMusic", (EntitySpan(5, 9, "genre", "jazz"),)),
        TrainingExample("hi", "greet", ()),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "hi", "intent": "greet"', "invalid JSON"),
        ('["hi"]', "not a JSON object"),
        ('{"intent": "greet"}', "missing key 'text'"),
        ('{"text": "hi"}', "missing key 'intent'"),
        ('{"text": 3, "intent": "greet"}', "'text' must be str"),
        (
            _one('{"start": 0, "end": 5, "entity": "x", "value": "hi"}'),
            "outside the text",
        ),
        (
            _one('{"start": 1, "end": 1, "entity": "x", "value": ""}'),
            "outside the text",
        ),
        (
            _one('{"start": 0, "end": 2, "entity": "x", "value": "yo"}', text="hi you"),
            "does not match",
        ),
        (
            _one('{"end": 2, "entity": "x", "value": "hi"}'),
            "missing key 'start'",
        ),
        (
            _one('{"start": true, "end": 2, "entity": "x"}'),
            "must be int",
        ),
        ('{"text": "hi", "intent": "g", "entities": {}}', "must be a list"),
        ('{"text": "hi", "intent": ""}', "empty intent"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = '{"text": "ok", "intent": "greet"}'
    f = write_lines(tmp_path / "bad.jsonl", good, good, line)
    with pytest.raises(TrainingDataError) as info:
        load_training_data(f)
    err = info.value
    assert message in str(err)
    assert err.path == str(f)
    assert err.line == 3
    assert f"{f}:3" in str(err)


def test_directory_is_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    write_lines(tmp_path / "b" / "x.jsonl", '{"text": "second", "intent": "b"}')
    write_lines(tmp_path / "a.jsonl", '{"text": "first", "intent": "a"}')
    (tmp_path / "notes.txt").write_text("ignored")
    write_lines(tmp_path / "c.yml", "nlu:", "- intent: c", "  examples: |", "    - third")
    data = load_training_data([tmp_path])
    assert [ex.text for ex in data.examples] == ["first", "second", "third"]


def test_missing_path_and_empty_directory_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no such file"):
        load_training_data(tmp_path / "nope.jsonl")
    with pytest.raises(TrainingDataError, match="no training data files"):
        load_training_data(tmp_path)


def test_unknown_extension_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("text,intent\n")
    with pytest.raises(TrainingDataError, match="unknown training data extension"):
        load_training_data(f)


def test_jsonl_round_trip_keeps_roles_groups_and_canonical_values(tmp_path: Path) -> None:
    data = TrainingData(
        examples=[
            TrainingExample(
                "from my savings account",
                "transfer",
                (EntitySpan(8, 23, "account", "savings", role="from", group="1"),),
            )
        ]
    )
    f = tmp_path / "out.jsonl"
    save_training_data(data, f)
    obj = json.loads(f.read_text().splitlines()[0])
    # the shared format's value stays the covered text; the synonym goes to "canonical"
    assert obj["entities"][0]["value"] == "savings account"
    assert obj["entities"][0]["canonical"] == "savings"
    assert load_training_data(f).examples == data.examples


def test_all_synonyms_include_annotated_values() -> None:
    data = TrainingData(
        examples=[
            TrainingExample("my current account", "x", (EntitySpan(3, 18, "account", "checking"),))
        ],
        synonyms={"Rainy Day Fund": "savings"},
    )
    assert data.all_synonyms() == {"rainy day fund": "savings", "current account": "checking"}


def test_committed_test_data_loads() -> None:
    data = load_training_data(DATA / "bank.yml")
    assert len(data.intents) == 10
    assert len(data.examples) > 200
    assert "account" in data.lookup_tables
    assert data.synonyms["current account"] == "checking"
    assert any(sp.role == "from" for ex in data.examples for sp in ex.entities)
    held_out = load_training_data(DATA / "bank_test.jsonl")
    assert set(held_out.intents) == set(data.intents)
