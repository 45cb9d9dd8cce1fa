"""Values seen in training as entity tagger features (understanding/gazetteer.py)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from intentbridge.understanding import NluModel, TrainingData, TrainingExample
from intentbridge.understanding.annotation import parse_annotated
from intentbridge.understanding.entities import EntityRecognizer
from intentbridge.understanding.extractors.base import RuleExtractors
from intentbridge.understanding.gazetteer import (
    MAX_PHRASE_TOKENS,
    Gazetteer,
    bio_phrases,
    span_phrase,
)
from intentbridge.understanding.tagger import bio_labels
from intentbridge.understanding.tokenizer import tokenize

EMILIE = ("emilie", "autumn")


def _gazetteer() -> Gazetteer:
    return Gazetteer.learn(
        [
            [(EMILIE, "artist")],
            [(EMILIE, "artist"), (("jazz",), "genre")],
            [(EMILIE, "entity_name")],
            [(EMILIE, "artist")],
            [(EMILIE, "artist")],
            [(EMILIE, "artist")],
            [(EMILIE, "artist")],
        ]
    )


def test_a_seen_value_marks_its_tokens_with_its_labels() -> None:
    tags = _gazetteer().tags(["play", "emilie", "autumn", "jazz"])
    assert tags == [[], ["g=B:artist"], ["g=I:artist"], ["g=B:genre"]]


def test_a_label_given_to_a_value_as_often_as_the_others_is_a_feature_too() -> None:
    gaz = Gazetteer.learn([[(EMILIE, "artist")], [(EMILIE, "entity_name")]])
    assert gaz.tags(list(EMILIE))[0] == ["g=B:artist", "g=B:entity_name"]
    # a stray label, one annotation in seven, is not (MIN_SHARE)
    assert "g=B:entity_name" not in _gazetteer().tags(list(EMILIE))[0]


def test_leave_one_out_hides_an_examples_own_annotations() -> None:
    gaz = _gazetteer()
    # "jazz" was annotated once: for that example it is a value never seen
    assert gaz.tags(["jazz"], without=[(("jazz",), "genre")]) == [[]]
    # "emilie autumn" has five more artist annotations besides the example's own
    assert gaz.tags(list(EMILIE), without=[(EMILIE, "artist")])[0] == ["g=B:artist"]


def test_overlapping_and_nested_values_all_count() -> None:
    gaz = Gazetteer.learn([[(("new", "york"), "city")], [(("new", "york", "times"), "paper")]])
    assert gaz.tags(["the", "new", "york", "times"]) == [
        [],
        ["g=B:city", "g=B:paper"],
        ["g=I:city", "g=I:paper"],
        ["g=I:paper"],
    ]


def test_long_values_are_left_out() -> None:
    long = tuple(f"w{i}" for i in range(MAX_PHRASE_TOKENS + 1))
    assert not Gazetteer.learn([[(long, "title")]])


def test_json_round_trip_and_models_saved_before() -> None:
    gaz = _gazetteer()
    again = Gazetteer.from_json(json.loads(json.dumps(gaz.to_json())))
    assert again == gaz
    assert again.tags(["emilie", "autumn"]) == gaz.tags(["emilie", "autumn"])
    assert not Gazetteer.from_json(None)


@given(st.lists(st.sampled_from(["emilie", "autumn", "jazz", "play", ""]), max_size=12))
def test_any_words_get_one_tag_list_each(words: list[str]) -> None:
    tags = _gazetteer().tags(words)
    assert len(tags) == len(words)
    assert all(t.split(":", 1)[1] in {"artist", "genre"} for token in tags for t in token)


def test_span_phrase_is_the_lower_cased_tokens_of_the_span() -> None:
    text = "Add Emilie Autumn, please"
    assert span_phrase(tokenize(text), 4, 17) == EMILIE


def _music() -> TrainingData:
    texts = [
        "add [emilie autumn](artist) to my playlist",
        "play [emilie autumn](artist) now",
        "play [the happy blues](album) now",
        "add [the happy blues](album) to my playlist",
        "play [jazz](genre) now",
        "add [blue moon](track) to my playlist",
    ]
    examples = []
    for text in texts * 2:
        plain, spans = parse_annotated(text)
        examples.append(TrainingExample(plain, "music", spans))
    examples += [TrainingExample(t, "greet") for t in ("hi", "hello there", "good morning")]
    return TrainingData(examples=examples)


def test_the_tagger_learns_from_leave_one_out_features_and_parses_with_all() -> None:
    data = _music()
    recognizer = EntityRecognizer.train(data, rules=RuleExtractors(), gazetteer=True)
    assert recognizer.gazetteer.phrases[EMILIE] == {"artist": 4}
    assert recognizer.gazetteer.phrases[("jazz",)] == {"genre": 2}
    found = recognizer.extract("play the happy blues now", "music")
    assert [(e.text, e.entity) for e in found] == [("the happy blues", "album")]
    # by default only on data of 1,000 examples or more (small template data would
    # teach the tagger to lean on the memory of a few values)
    assert not EntityRecognizer.train(data, rules=RuleExtractors()).gazetteer


def _model(*, gazetteer: bool) -> NluModel:
    data = _music()
    model = NluModel.train(data)
    rules = model.entities.rules
    model.entities = EntityRecognizer.train(data, rules=rules, gazetteer=gazetteer)
    return model


def test_a_saved_model_keeps_its_gazetteer(tmp_path: Path) -> None:
    model = _model(gazetteer=True)
    assert model.entities.gazetteer
    model.save(tmp_path / "m")
    loaded = NluModel.load(tmp_path / "m")
    assert loaded.entities.gazetteer == model.entities.gazetteer
    text = "add emilie autumn to my playlist"
    assert loaded.parse(text) == model.parse(text)


def test_a_model_saved_before_the_gazetteer_loads_without_one(tmp_path: Path) -> None:
    old = _model(gazetteer=False)
    old.save(tmp_path / "m")
    rules = tmp_path / "m" / "rules.json"
    saved = json.loads(rules.read_text())
    del saved["gazetteer"]  # what a model saved before it holds
    rules.write_text(json.dumps(saved))
    loaded = NluModel.load(tmp_path / "m")
    assert not loaded.entities.gazetteer
    text = "add emilie autumn to my playlist"
    assert loaded.parse(text) == old.parse(text)


@given(st.lists(st.sampled_from(["O", "album", "artist"]), min_size=1, max_size=10), st.data())
def test_bio_phrases_give_back_the_spans_bio_labels_were_made_from(
    kinds: list[str], data: st.DataObject
) -> None:
    words = [data.draw(st.sampled_from(["play", "Emilie", "the", "blues", "x"])) for _ in kinds]
    text = " ".join(words)
    tokens = tokenize(text)
    assert len(tokens) == len(words)
    # runs of the same kind are one span, unless the draw splits them
    spans: list[tuple[int, int, str]] = []
    for i, kind in enumerate(kinds):
        joined = spans and spans[-1][2] == kind and data.draw(st.booleans())
        if kind == "O":
            continue
        if joined and spans[-1][1] == tokens[i - 1].end:
            spans[-1] = (spans[-1][0], tokens[i].end, kind)
        else:
            spans.append((tokens[i].start, tokens[i].end, kind))
    expected = [(span_phrase(tokens, s, e), y) for s, e, y in spans]
    assert bio_phrases(tokens, bio_labels(tokens, spans)) == expected
