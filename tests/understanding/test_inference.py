"""The numpy-only inference path: same numbers as scikit-learn, light to import and load."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from intentbridge.understanding import NluModel, load_training_data
from intentbridge.understanding.intent import (
    CompiledTfidf,
    SparseIntentClassifier,
    char_wb_ngrams,
    softmax,
    word_ngrams,
)

DATA = Path(__file__).parents[1] / "data" / "nlu"

TEXTS = [
    "Move 50 euros from checking to my savngs tomorrow!",
    "  what's   my\tbalance?? ",
    "Überweisung von 1.250,50 € an Zoë",
    "a I x",
    "",
    "hi",
    "block card ending 1234 — it was STOLEN",
]


@pytest.mark.parametrize("text", TEXTS)
def test_analyzers_match_scikit_learn(text: str) -> None:
    for low, high in [(1, 1), (1, 2), (1, 3), (2, 3)]:
        expected = TfidfVectorizer(ngram_range=(low, high)).build_analyzer()(text)
        assert word_ngrams(text, low, high) == expected
    for low, high in [(1, 5), (2, 5), (3, 3)]:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(low, high))
        assert char_wb_ngrams(text, low, high) == vec.build_analyzer()(text)


def test_compiled_scores_and_probabilities_equal_scikit_learn() -> None:
    data = load_training_data(DATA / "bank.yml")
    texts = [ex.text for ex in data.examples]
    labels = [ex.intent for ex in data.examples]
    vecs = [
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    ]
    matrix = sp.hstack([v.fit_transform(texts) for v in vecs]).tocsr()
    svm = LinearSVC().fit(matrix, labels)
    compiled = CompiledTfidf.from_sklearn(vecs, svm.coef_, svm.intercept_)
    queries = [*TEXTS, *texts[:50]]
    expected = np.asarray(sp.hstack([v.transform(queries) for v in vecs]) @ svm.coef_.T)
    expected = expected + svm.intercept_
    got = compiled.scores(queries)
    assert np.abs(got - expected).max() < 1e-9
    assert np.abs(softmax(got * 5) - softmax(expected * 5)).max() < 1e-9


def test_saved_sparse_model_predicts_the_same(tmp_path: Path) -> None:
    data = load_training_data(DATA / "bank.yml")
    clf = SparseIntentClassifier().fit(
        [ex.text for ex in data.examples], [ex.intent for ex in data.examples]
    )
    clf.save(tmp_path)
    assert not list(tmp_path.glob("*.joblib")) and not list(tmp_path.glob("*.pkl"))
    loaded = SparseIntentClassifier.load(tmp_path)
    assert list(loaded.classes_) == list(clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-12)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inference") / "m"
    NluModel.train(load_training_data(DATA / "bank.yml")).save(path)
    return path


def test_loading_and_parsing_import_neither_sklearn_nor_scipy(saved: Path) -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from intentbridge.understanding import NluModel\n"
        f"m = NluModel.load({str(saved)!r})\n"
        "m.parse('move 50 euros from checking to savings')\n"
        "heavy = [n for n in ('sklearn', 'scipy', 'joblib', 'dateparser') if n in sys.modules]\n"
        "print(heavy, time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    assert out[0] == "[]", out
    # generous: ~0.3 s on an idle machine; shared CI cores are much slower
    assert float(out[1]) < 5.0


def test_load_and_parse_speed_sanity(saved: Path) -> None:
    started = time.perf_counter()
    loaded = NluModel.load(saved)
    assert time.perf_counter() - started < 2.0
    loaded.parse("warm up")
    times = []
    for text in TEXTS * 10:
        t = time.perf_counter()
        loaded.parse(text)
        times.append(time.perf_counter() - t)
    assert float(np.median(times)) < 0.01  # ~0.3 ms idle; 10 ms leaves room for load
