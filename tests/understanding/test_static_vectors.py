"""Static word-piece vectors: the tokenizer, the vectors, and what they add to `fast`."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from intentbridge.errors import ModelError
from intentbridge.understanding import NluModel
from intentbridge.understanding.data import TrainingData, make_example
from intentbridge.understanding.intent import SparseIntentClassifier
from intentbridge.understanding.static_vectors import (
    basic_words,
    static_vectors,
    unicode_basic_words,
)


@functools.cache  # hypothesis asks for it once per example; a skip is not cached
def _hf_tokenizer() -> object:
    pytest.importorskip("transformers", reason="the 'embeddings' extra is not installed")
    from transformers import AutoTokenizer

    from intentbridge.understanding.encoders import find_embeddings_dir

    try:
        path = find_embeddings_dir()
    except ModelError as exc:
        pytest.skip(f"no local MiniLM folder: {exc}")
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


@pytest.fixture(scope="module")
def hf_tokenizer() -> object:
    return _hf_tokenizer()


def test_basic_words_split_like_bert() -> None:
    assert basic_words("Héllo, World!") == ["hello", ",", "world", "!"]
    assert basic_words("  a\tb\n") == ["a", "b"]
    assert basic_words("$5.00") == ["$", "5", ".", "00"]
    assert basic_words("日本") == ["日", "本"]
    assert basic_words("\x00\ufffd") == []


TRICKY = [
    "Move 50 euros from checking to my savngs tomorrow!",
    "Überweisung von 1.250,50 € an Zoë",
    "naïve café — ¿qué?",
    "x" * 150,
    "antidisestablishmentarianism",
    "e-mail me @ 9:30pm",
    "日本語 and 한국어",
    "ﬁnance ™ ½",
    "",
]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=60))
def test_the_ascii_shortcut_splits_as_the_unicode_path(text: str) -> None:
    assert basic_words(text) == unicode_basic_words(text)


@pytest.mark.parametrize("text", TRICKY)
def test_piece_ids_match_the_bert_tokenizer(hf_tokenizer: object, text: str) -> None:
    expected = hf_tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    assert static_vectors().piece_ids(text) == expected


# Python's unicodedata and the Rust tokenizer know different Unicode versions, so a
# rare character (a sign added to Telugu in 2019) may be punctuation to one and a letter
# to the other. The texts here mix Latin-1 (accents, controls, symbols) with characters
# whose class has not changed: typographic punctuation, CJK, Greek, Cyrillic, Hangul.
_STABLE = "€—–“”‘’…¿¡·•中文日本語한국어αβγδДжЯ\u0301\u200b\u00ad\t\n"


@settings(max_examples=300, deadline=None)
@given(st.text(st.one_of(st.characters(codec="latin-1"), st.sampled_from(_STABLE)), max_size=60))
def test_piece_ids_match_the_bert_tokenizer_on_any_text(text: str) -> None:
    # Unknown pieces carry no vector, so only the known ones must agree. The library
    # reads "[UNK]" in a text as its special token; ours reads it as text, as a user's
    # text should be.
    assume(not any(name in text.upper() for name in ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")))
    unknown = static_vectors().unknown
    tokenizer = _hf_tokenizer()
    expected = tokenizer(text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    got = static_vectors().piece_ids(text)
    assert [i for i in got if i != unknown] == [i for i in expected if i != unknown]


def test_vector_length_is_the_share_of_known_whole_words() -> None:
    vectors = static_vectors()
    assert vectors.dimension == 128
    full = vectors.encode_one("send money to my mother")
    assert np.isclose(np.linalg.norm(full), 1.0, atol=1e-5)
    # "zxqv" and "blorp" split into several pieces: the message carries half a vector
    half = vectors.encode_one("money zxqv blorp mother")
    assert np.isclose(np.linalg.norm(half), 0.5, atol=1e-5)
    assert not vectors.encode_one("zxqv blorp").any()
    assert not vectors.encode_one("").any()
    assert vectors.encode(["money", "", "cash"]).shape == (3, 128)


def test_related_words_are_closer_than_unrelated_ones() -> None:
    v = static_vectors()
    money, cash, giraffe = (v.encode_one(w) for w in ("money", "cash", "giraffe"))
    assert money @ cash > money @ giraffe + 0.1


# Three intents whose probes share no word with their examples: only meaning links them.
FOOD = ["i want a pizza", "order a burger for me", "get me some fries", "i am hungry, order food"]
TAXI = ["book a cab", "i need a taxi to the station", "call me a cab now", "taxi please"]
WEATHER = ["is it going to rain", "what is the forecast", "will it be sunny", "how hot is it"]
PROBES = [
    ("could i have sushi delivered", "food"),
    ("bring me noodles and dumplings", "food"),
    ("a sandwich would be great", "food"),
    ("i need a ride to the airport", "taxi"),
    ("send a driver to my hotel", "taxi"),
    ("get me an uber", "taxi"),
    ("any snow expected tomorrow", "weather"),
    ("temperature outside today", "weather"),
    ("should i bring an umbrella", "weather"),
]


def _tiny_data() -> TrainingData:
    examples = [
        make_example(text, intent)
        for intent, texts in (("food", FOOD), ("taxi", TAXI), ("weather", WEATHER))
        for text in texts
    ]
    return TrainingData(examples=examples)


def _right(clf: SparseIntentClassifier) -> int:
    predicted = clf.predict_proba([p for p, _ in PROBES]).argmax(axis=1)
    return sum(clf.classes_[i] == gold for i, (_, gold) in zip(predicted, PROBES, strict=True))


def test_static_vectors_carry_meaning_the_ngrams_lack() -> None:
    data = _tiny_data()
    texts = [ex.text for ex in data.examples]
    labels = [ex.intent for ex in data.examples]
    with_vectors = _right(SparseIntentClassifier().fit(texts, labels))
    without = _right(SparseIntentClassifier(static_weight=0.0).fit(texts, labels))
    assert with_vectors >= 7, with_vectors
    assert with_vectors >= without + 3, (with_vectors, without)


def test_made_up_words_stay_a_fallback_on_the_bank_data(bank_model: NluModel) -> None:
    for text in ("zxqv blorp", "asdf", "qwerty uiop"):
        assert bank_model.parse(text).intent == "nlu_fallback", text


def _saved(tmp_path: Path, **params: float) -> Path:
    data = _tiny_data()
    clf = SparseIntentClassifier(**params).fit(
        [ex.text for ex in data.examples], [ex.intent for ex in data.examples]
    )
    clf.save(tmp_path)
    return tmp_path


def test_a_model_of_another_table_is_refused_at_load(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    doc = json.loads((path / "sparse_model.json").read_text())
    doc["params"]["static_sha256"] = "0" * 64
    (path / "sparse_model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=r"another static vector table.*retrain"):
        SparseIntentClassifier.load(path)


def test_a_model_saved_before_static_vectors_still_loads(tmp_path: Path) -> None:
    path = _saved(tmp_path, static_weight=0.0)
    doc = json.loads((path / "sparse_model.json").read_text())
    for key in ("static_weight", "static_sha256"):
        del doc["params"][key]
    (path / "sparse_model.json").write_text(json.dumps(doc))
    loaded = SparseIntentClassifier.load(path)
    assert loaded.static_coef_t is None
    assert loaded.predict_proba(["taxi please"]).shape == (1, 3)
