"""Intent classifiers and the seam any intent model plugs into.

An intent model is anything with ``fit``/``predict_proba``/``classes_``/``save``/``load``
(:class:`IntentModel`). :class:`SparseIntentClassifier` is the fast one: TF-IDF word
1-2 grams and char_wb 2-5 grams into a LinearSVC. Its scores are turned into
probabilities with a softmax; :class:`~intentbridge.understanding.calibration.Calibration`
then applies a temperature fitted on held-out data, so the raw scale does not matter.

scikit-learn is needed to *fit* it, not to use it: after fitting, the vectorizers and the
SVM are compiled into plain data (:class:`CompiledTfidf` — vocabularies, idf vectors, a
weight matrix and intercepts) and prediction is n-gram extraction plus a sparse row
times the weight matrix in numpy. Saved models hold only that data (``.npz`` + JSON),
so loading imports neither scikit-learn nor scipy and runs no pickles.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from intentbridge.errors import ModelError
from intentbridge.understanding.static_vectors import static_vectors

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

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


# --- numpy-only inference ----------------------------------------------------------

_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
_SPACES = re.compile(r"\s\s+")


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``analyzer="word"`` (lower-cased, default token pattern)."""
    tokens = _WORD.findall(text.lower())
    grams = list(tokens) if low == 1 else []
    n_tokens = len(tokens)
    for n in range(max(low, 2), min(high, n_tokens) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(n_tokens - n + 1))
    return grams


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``analyzer="char_wb"`` (lower-cased; n-grams inside padded words)."""
    grams: list[str] = []
    for word in _SPACES.sub(" ", text.lower()).split():
        w = " " + word + " "
        size = len(w)
        for n in range(low, high + 1):
            if size <= n:  # a short word counts once, whole
                grams.append(w)
                break
            grams.extend(w[i : i + n] for i in range(size - n + 1))
    return grams


_ANALYZERS = {"word": word_ngrams, "char_wb": char_wb_ngrams}


class CompiledTfidf:
    """Fitted TF-IDF vectorizers (sublinear tf, l2 norm each) and a linear model.

    ``blocks`` holds one ``(analyzer, (low, high), vocabulary, idf, offset)`` per
    vectorizer; ``coef_t`` is the weight matrix with one row per feature. Scores equal
    ``hstack(v.transform(texts)) @ coef.T + intercept`` of the scikit-learn objects it
    was compiled from (pinned by a test to 1e-9).
    """

    def __init__(
        self,
        blocks: Sequence[tuple[str, tuple[int, int], dict[str, int], FloatArray]],
        coef_t: FloatArray,
        intercept: FloatArray,
    ) -> None:
        self.blocks: list[tuple[str, tuple[int, int], dict[str, int], FloatArray, int]] = []
        offset = 0
        for analyzer, ngrams, vocab, idf in blocks:
            self.blocks.append((analyzer, ngrams, vocab, idf, offset))
            offset += len(vocab)
        if coef_t.shape[0] != offset:
            raise ModelError("weight matrix and vocabularies disagree; retrain the model")
        self.coef_t = np.ascontiguousarray(coef_t, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)

    @classmethod
    def from_sklearn(
        cls, vectorizers: Sequence[TfidfVectorizer], coef: FloatArray, intercept: FloatArray
    ) -> CompiledTfidf:
        """Compile fitted ``TfidfVectorizer`` objects and a ``(classes, features)`` matrix."""
        blocks = []
        for vec in vectorizers:
            if vec.analyzer not in _ANALYZERS or not vec.sublinear_tf or vec.norm != "l2":
                raise ModelError(f"cannot compile a {vec.analyzer!r} TF-IDF vectorizer")
            vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
            low, high = vec.ngram_range
            blocks.append(
                (str(vec.analyzer), (int(low), int(high)), vocab, np.asarray(vec.idf_, np.float64))
            )
        return cls(blocks, np.asarray(coef, dtype=np.float64).T, intercept)

    def scores_one(self, text: str) -> FloatArray:
        """Linear scores for one text, shape ``(n_classes,)``."""
        scores = self.intercept.copy()
        coef_t = self.coef_t
        for analyzer, (low, high), vocab, idf, offset in self.blocks:
            counts: dict[int, int] = {}
            get = vocab.get
            for gram in _ANALYZERS[analyzer](text, low, high):
                j = get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            n = len(counts)
            idx = np.fromiter(counts, dtype=np.int64, count=n)
            tf = np.fromiter(counts.values(), dtype=np.float64, count=n)
            weights = (np.log(tf) + 1.0) * idf[idx]  # sublinear tf times idf
            weights /= math.sqrt(float(weights @ weights))
            scores += weights @ coef_t[idx + offset]
        return scores

    def knows_any(self, text: str) -> bool:
        """Whether any word or character n-gram of ``text`` is in a vocabulary."""
        for analyzer, (low, high), vocab, _idf, _offset in self.blocks:
            if any(gram in vocab for gram in _ANALYZERS[analyzer](text, low, high)):
                return True
        return False

    def scores(self, texts: Sequence[str]) -> FloatArray:
        """Linear scores, shape ``(len(texts), n_classes)``."""
        out = np.empty((len(texts), len(self.intercept)))
        for i, text in enumerate(texts):
            out[i] = self.scores_one(text)
        return out

    def save(self, directory: Path, stem: str) -> None:
        """Write ``<stem>.npz`` (idf, weights, intercepts) and ``<stem>.json`` (vocabularies)."""
        arrays: dict[str, Any] = {"coef_t": self.coef_t, "intercept": self.intercept}
        doc: list[dict[str, Any]] = []
        for i, (analyzer, ngrams, vocab, idf, _offset) in enumerate(self.blocks):
            terms = [""] * len(vocab)
            for term, j in vocab.items():
                terms[j] = term
            doc.append({"analyzer": analyzer, "ngram_range": list(ngrams), "terms": terms})
            arrays[f"idf{i}"] = idf
        np.savez(directory / f"{stem}.npz", **arrays)
        (directory / f"{stem}.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path, stem: str) -> CompiledTfidf:
        """Read what :meth:`save` wrote (no pickles)."""
        doc = json.loads((directory / f"{stem}.json").read_text("utf-8"))
        with np.load(directory / f"{stem}.npz", allow_pickle=False) as arrays:
            blocks = [
                (
                    str(b["analyzer"]),
                    (int(b["ngram_range"][0]), int(b["ngram_range"][1])),
                    {t: j for j, t in enumerate(b["terms"])},
                    arrays[f"idf{i}"],
                )
                for i, b in enumerate(doc)
            ]
            return cls(blocks, arrays["coef_t"], arrays["intercept"])


# --- the sparse intent model -------------------------------------------------------


class SparseIntentClassifier:
    """TF-IDF (word 1-2 grams + char_wb 2-5 grams) and static word-piece vectors into a
    linear SVM.

    ``C`` is the SVM's regularisation; ``static_weight`` scales the message's static
    vector (:mod:`~intentbridge.understanding.static_vectors`, with the mean training
    vector filling in for unknown words, see :meth:`_static_features`) beside the
    unit-length TF-IDF rows (0 leaves it out). The defaults were chosen on the
    validation splits of BANKING77, CLINC150, SNIPS and ATIS (see docs/nlu.md).

    >>> clf = SparseIntentClassifier().fit(["hi", "bye"], ["greet", "goodbye"])
    >>> clf.predict_proba(["hello"]).shape
    (1, 2)
    """

    STEM = "sparse_intent"
    #: ``fit`` spends its time in liblinear, which releases the GIL: training may run
    #: two fits at once in threads (see training.py)
    fits_in_threads = True

    def __init__(
        self,
        *,
        C: float = 0.5,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 5),
        char_min_df: int = 2,
        scale: float = 5.0,
        class_weight: str | None = None,
        static_weight: float = 1.0,
        **_unused: Any,
    ) -> None:
        self.C = C
        self.static_weight = float(static_weight)
        #: ``(dimension, n_classes)`` weights of the static vector, already scaled
        self.static_coef_t: FloatArray | None = None
        #: the mean training vector: what stands in for the words a message lacks
        self.static_prior: FloatArray | None = None
        self.static_sha256 = ""
        self.word_ngrams = tuple(word_ngrams)
        self.char_ngrams = tuple(char_ngrams) if char_ngrams is not None else None
        self.char_min_df = char_min_df
        self.scale = scale
        self.class_weight = class_weight
        self.classes_: npt.NDArray[Any] = np.array([])
        self.compiled: CompiledTfidf | None = None

    def _make_vectorizers(self, n_texts: int) -> list[TfidfVectorizer]:
        from sklearn.feature_extraction.text import TfidfVectorizer

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
        """Fit vectorizers and the SVM (needs scikit-learn), then compile them."""
        import scipy.sparse as sp
        from sklearn.svm import LinearSVC

        if len(set(labels)) < 2:
            raise ModelError("an intent classifier needs at least two intents")
        vectorizers = self._make_vectorizers(len(texts))
        blocks = [v.fit_transform(texts) for v in vectorizers]
        n_sparse = sum(b.shape[1] for b in blocks)
        if self.static_weight:
            vectors = static_vectors()
            raw = vectors.encode(texts).astype(np.float64)
            self.static_prior = raw.mean(axis=0)
            blocks.append(sp.csr_matrix(self._static_features(raw) * self.static_weight))
            self.static_sha256 = vectors.sha256
        matrix = sp.hstack(blocks).tocsr()
        svm = LinearSVC(C=self.C, class_weight=self.class_weight)
        svm.fit(matrix, labels)
        self.classes_ = np.asarray(svm.classes_)
        coef = np.asarray(svm.coef_, dtype=np.float64)
        intercept = np.asarray(svm.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            # binary LinearSVC keeps one row; make it two so scores are per class
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        self.compiled = CompiledTfidf.from_sklearn(vectorizers, coef[:, :n_sparse], intercept)
        self.static_coef_t = (
            np.ascontiguousarray(coef[:, n_sparse:].T * self.static_weight)
            if self.static_weight
            else None
        )
        return self

    def decision_function(self, texts: list[str]) -> FloatArray:
        """Raw SVM scores, shape ``(len(texts), len(classes_))``."""
        if self.compiled is None:
            raise ModelError("the intent classifier is not trained")
        scores = self.compiled.scores(texts)
        if self.static_coef_t is not None:
            raw = static_vectors().encode(list(texts)).astype(np.float64)
            scores += self._static_features(raw) @ self.static_coef_t
        return scores

    def _static_features(self, raw: FloatArray) -> FloatArray:
        """Static vectors with the prior filling in for unknown words.

        A vector's length is the share of a message's words that the table knows
        (:meth:`StaticVectors.encode_one`); the rest of the unit length is the mean
        training vector, so that a message of made-up words looks like an average one
        (every intent about as likely) rather than like zero, which the SVM never saw.
        """
        prior = self.static_prior if self.static_prior is not None else 0.0
        share = np.sqrt(np.einsum("ij,ij->i", raw, raw))
        out: FloatArray = raw + (1.0 - share)[:, None] * prior
        return out

    def knows(self, text: str) -> bool:
        """Whether ``text`` holds anything seen in training (a word, a character n-gram).

        When it does not, the scores are the intercepts alone: the model has no
        evidence, whatever confidence the softmax of those gives.
        """
        if self.compiled is None:
            raise ModelError("the intent classifier is not trained")
        return self.compiled.knows_any(text)

    def predict_proba(self, texts: list[str]) -> FloatArray:
        """Softmax of scaled SVM scores (calibrated later by temperature)."""
        return softmax(self.decision_function(texts) * self.scale)

    def _params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "char_min_df": self.char_min_df,
            "scale": self.scale,
            "class_weight": self.class_weight,
            "static_weight": self.static_weight,
            "static_sha256": self.static_sha256,
        }

    def save(self, directory: Path) -> None:
        """Write the compiled model: ``sparse_intent.{npz,json}`` and ``sparse_model.json``."""
        if self.compiled is None:
            raise ModelError("the intent classifier is not trained")
        self.compiled.save(directory, self.STEM)
        if self.static_coef_t is not None and self.static_prior is not None:
            np.savez(
                directory / f"{self.STEM}_static.npz",
                coef_t=self.static_coef_t,
                prior=self.static_prior,
            )
        doc = {"params": self._params(), "classes": [str(c) for c in self.classes_]}
        (directory / "sparse_model.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> SparseIntentClassifier:
        """Read a model written by :meth:`save` (numpy only)."""
        doc = json.loads((directory / "sparse_model.json").read_text("utf-8"))
        params = dict(doc["params"])
        # models saved before static vectors existed have no static block
        params.setdefault("static_weight", 0.0)
        sha = str(params.pop("static_sha256", ""))
        params["word_ngrams"] = tuple(params["word_ngrams"])
        if params.get("char_ngrams") is not None:
            params["char_ngrams"] = tuple(params["char_ngrams"])
        model = cls(**params)
        model.classes_ = np.asarray(doc["classes"], dtype=object)
        model.compiled = CompiledTfidf.load(directory, cls.STEM)
        if model.static_weight:
            vectors = static_vectors()
            if sha != vectors.sha256:
                raise ModelError(
                    f"{directory} was trained with another static vector table "
                    f"(sha256 {sha[:12]}…, this install has {vectors.sha256[:12]}…); "
                    "retrain it with 'intentbridge nlu train'"
                )
            model.static_sha256 = sha
            with np.load(directory / f"{cls.STEM}_static.npz", allow_pickle=False) as arrays:
                model.static_coef_t = arrays["coef_t"]
                model.static_prior = arrays["prior"]
        return model


def predict_labels(model: IntentModel, texts: Sequence[str]) -> list[str]:
    """The most probable intent for each text."""
    probs = model.predict_proba(list(texts))
    return [str(model.classes_[i]) for i in probs.argmax(axis=1)]
