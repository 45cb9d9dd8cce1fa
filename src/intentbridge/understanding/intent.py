"""Intent classifiers and the seam any intent model plugs into.

An intent model is anything with ``fit``/``predict_proba``/``classes_``/``save``/``load``
(:class:`IntentModel`). :class:`SparseIntentClassifier` is the fast one: TF-IDF word
1-2 grams and char_wb 2-5 grams into a LinearSVC. Its scores are turned into
probabilities with a softmax; :class:`~intentbridge.understanding.calibration.Calibrator`
then fits a temperature on held-out data, so the raw scale does not matter.

Prediction for one message avoids scikit-learn's per-call validation overhead (about
a millisecond): the analyzers and vocabularies are used directly and the scores are
one sparse row times the weight matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import joblib
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from intentbridge.errors import ModelError

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class IntentModel(Protocol):
    """What the pipeline needs from an intent model.

    ``predict_proba`` returns one row per text, columns in the order of ``classes_``.
    ``save``/``load`` use a directory the model owns.

    >>> class Always:
    ...     classes_ = np.array(["greet"])
    ...     def fit(self, texts, labels): return self
    ...     def predict_proba(self, texts): return np.ones((len(texts), 1))
    ...     def save(self, directory): ...
    ...     @classmethod
    ...     def load(cls, directory): return cls()
    """

    classes_: npt.NDArray[Any]

    def fit(self, texts: list[str], labels: list[str]) -> Any:
        """Learn from texts and their intent labels; returns the model."""
        ...

    def predict_proba(self, texts: list[str]) -> FloatArray:
        """Class probabilities, shape ``(len(texts), len(classes_))``."""
        ...

    def save(self, directory: Path) -> None:
        """Write the model into ``directory`` (which exists)."""
        ...


def softmax(scores: FloatArray) -> FloatArray:
    """Row-wise softmax, numerically stable."""
    shifted: FloatArray = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class SparseIntentClassifier:
    """TF-IDF (word 1-2 grams + char_wb 2-5 grams) and a linear SVM.

    ``C`` is the SVM's regularisation; the defaults were chosen on the validation
    splits of BANKING77, CLINC150, SNIPS and ATIS (see docs/nlu.md).

    >>> clf = SparseIntentClassifier().fit(["hi", "bye"], ["greet", "goodbye"])
    >>> clf.predict_proba(["hello"]).shape
    (1, 2)
    """

    FILE = "sparse_intent.joblib"

    def __init__(
        self,
        *,
        C: float = 1.0,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 5),
        char_min_df: int = 2,
        scale: float = 5.0,
        **_unused: Any,
    ) -> None:
        self.C = C
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.char_min_df = char_min_df
        self.scale = scale
        self.classes_: npt.NDArray[Any] = np.array([])
        self._vectorizers: list[TfidfVectorizer] = []
        self._coef: FloatArray = np.zeros((0, 0))
        self._intercept: FloatArray = np.zeros(0)
        self._coef_t: FloatArray = np.zeros((0, 0))
        self._fast: list[tuple[Any, dict[str, int], FloatArray, int]] = []

    def _make_vectorizers(self, n_texts: int) -> list[TfidfVectorizer]:
        vecs = [TfidfVectorizer(ngram_range=self.word_ngrams, sublinear_tf=True, lowercase=True)]
        if self.char_ngrams is not None:
            # min_df>1 drops typo-specific n-grams; tiny data sets need every n-gram
            min_df = self.char_min_df if n_texts >= 1000 else 1
            vecs.append(
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=self.char_ngrams,
                    sublinear_tf=True,
                    lowercase=True,
                    min_df=min_df,
                )
            )
        return vecs

    def fit(self, texts: list[str], labels: list[str]) -> Self:
        """Fit vectorizers and the SVM."""
        if len(set(labels)) < 2:
            raise ModelError("an intent classifier needs at least two intents")
        self._vectorizers = self._make_vectorizers(len(texts))
        matrix = sp.hstack([v.fit_transform(texts) for v in self._vectorizers]).tocsr()
        svm = LinearSVC(C=self.C)
        svm.fit(matrix, labels)
        self.classes_ = np.asarray(svm.classes_)
        coef = np.asarray(svm.coef_, dtype=np.float64)
        intercept = np.asarray(svm.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            # binary LinearSVC keeps one row; make it two so scores are per class
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        self._coef = coef
        self._intercept = intercept
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Split the weight matrix per vectorizer for the one-message fast path."""
        self._fast = []
        offset = 0
        for vec in self._vectorizers:
            vocab: dict[str, int] = vec.vocabulary_
            idf = np.asarray(vec.idf_, dtype=np.float64)
            self._fast.append((vec.build_analyzer(), vocab, idf, offset))
            offset += len(vocab)
        # rows indexed by feature: one message touches a few hundred rows at most
        self._coef_t = np.ascontiguousarray(self._coef.T)

    def decision_function(self, texts: list[str]) -> FloatArray:
        """Raw SVM scores, shape ``(len(texts), len(classes_))``."""
        if len(texts) == 1:
            return self._scores_one(texts[0])[None, :]
        matrix = sp.hstack([v.transform(texts) for v in self._vectorizers]).tocsr()
        scores = matrix @ self._coef.T + self._intercept
        return np.asarray(scores, dtype=np.float64)

    def _scores_one(self, text: str) -> FloatArray:
        scores = self._intercept.copy()
        for analyzer, vocab, idf, offset in self._fast:
            counts: dict[int, int] = {}
            for gram in analyzer(text):
                j = vocab.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = np.fromiter(
                (1.0 + math.log(c) for c in counts.values()), dtype=np.float64, count=len(counts)
            )
            weights = tf * idf[idx]
            weights /= math.sqrt(float(weights @ weights))
            scores += weights @ self._coef_t[idx + offset]
        return scores

    def predict_proba(self, texts: list[str]) -> FloatArray:
        """Softmax of scaled SVM scores (calibrated later by temperature)."""
        return softmax(self.decision_function(texts) * self.scale)

    def save(self, directory: Path) -> None:
        """Write vectorizers and weights with joblib."""
        state = {
            "params": {
                "C": self.C,
                "word_ngrams": self.word_ngrams,
                "char_ngrams": self.char_ngrams,
                "char_min_df": self.char_min_df,
                "scale": self.scale,
            },
            "classes": self.classes_,
            "vectorizers": self._vectorizers,
            "coef": self._coef,
            "intercept": self._intercept,
        }
        joblib.dump(state, directory / self.FILE)

    @classmethod
    def load(cls, directory: Path) -> SparseIntentClassifier:
        """Read a model written by :meth:`save`."""
        state = joblib.load(directory / cls.FILE)
        model = cls(**state["params"])
        model.classes_ = state["classes"]
        model._vectorizers = state["vectorizers"]
        model._coef = state["coef"]
        model._intercept = state["intercept"]
        model._prepare()
        return model


def predict_labels(model: IntentModel, texts: Sequence[str]) -> list[str]:
    """The most probable intent for each text."""
    probs = model.predict_proba(list(texts))
    return [str(model.classes_[i]) for i in probs.argmax(axis=1)]
