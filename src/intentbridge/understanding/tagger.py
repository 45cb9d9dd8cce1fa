"""The CRF entity tagger: BIO tags over tokens, learned from annotated spans.

Labels are the entity name, or ``entity#role`` when the data annotates roles, so
"from [checking]{role: from}" and "to [savings]{role: to}" are told apart by the
words around them. Besides the usual word, affix, shape and window features, each
token knows whether a rule extractor matched it ("rule=money", "rule=lookup:account"):
the tagger learns when such a match is an entity, and of which kind.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pycrfsuite

from intentbridge.errors import ModelError
from intentbridge.understanding.crf_marginals import CrfWeights
from intentbridge.understanding.crfsuite_file import crfsuite_problem
from intentbridge.understanding.tokenizer import Token

_OUTSIDE = "O"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TaggedSpan:
    """A span the tagger found: token-aligned offsets, label and confidence."""

    start: int
    end: int
    entity: str
    role: str | None
    confidence: float


def _shape(word: str) -> str:
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        # collapse runs so "Savings" and "Checking" share the shape "Xx"
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def token_features(
    tokens: Sequence[Token],
    rule_tags: Sequence[Sequence[str]],
    *,
    intent: str | None = None,
    clusters: Mapping[str, Sequence[str]] | None = None,
    seen: Sequence[Sequence[str]] | None = None,
) -> list[list[str]]:
    """CRFsuite feature strings for each token.

    ``rule_tags[i]`` holds the rule kinds matching token ``i`` (with a ``B:`` prefix on
    the first token of a match), e.g. ``["B:money"]``. ``intent`` (the gold intent in
    training, the predicted one when parsing) is a feature of every token: SNIPS's
    ``object_name`` and ``playlist`` look alike but belong to different intents.
    ``clusters`` maps words to cluster ids (:mod:`.clusters`), coarse to fine.
    ``seen[i]`` holds token ``i``'s gazetteer features (:mod:`.gazetteer`):
    training values it is part of, e.g. ``["g=B:artist"]``.
    """
    words = [t.text.lower() for t in tokens]
    shapes = [_shape(t.text) for t in tokens]
    cids: list[Sequence[str]] = (
        [clusters.get(w, ()) for w in words] if clusters else [() for _ in words]
    )
    feats: list[list[str]] = []
    n = len(tokens)
    intent_f = "intent=" + intent if intent else None
    for i, tok in enumerate(tokens):
        w = words[i]
        f = [
            "bias",
            "w=" + w,
            "p2=" + w[:2],
            "p3=" + w[:3],
            "p4=" + w[:4],
            "s2=" + w[-2:],
            "s3=" + w[-3:],
            "s4=" + w[-4:],
            "sh=" + shapes[i],
        ]
        if intent_f is not None:
            f.append(intent_f)
        if tok.text[:1].isupper():
            f.append("cap")
        if w.isdigit():
            f.append("digit")
            f.append(f"len={min(len(w), 5)}")
        for level, cid in enumerate(cids[i]):
            f.append(f"c{level}={cid}")
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                f.append(f"w[{off}]={words[j]}")
                if off in (-1, 1):
                    f.append(f"sh[{off}]={shapes[j]}")
                    for level, cid in enumerate(cids[j]):
                        f.append(f"c{level}[{off}]={cid}")
            else:
                f.append(f"w[{off}]=<{'s' if j < 0 else '/s'}>")
        if i > 0:
            f.append(f"w[-1:0]={words[i - 1]}|{w}")
            if i > 1:
                f.append(f"w[-2:-1]={words[i - 2]}|{words[i - 1]}")
        if i + 1 < n:
            f.append(f"w[0:1]={w}|{words[i + 1]}")
            if i + 2 < n:
                f.append(f"w[1:2]={words[i + 1]}|{words[i + 2]}")
        for tag in rule_tags[i]:
            f.append("rule=" + tag)
        for off in (-1, 1):
            j = i + off
            if 0 <= j < n:
                for tag in rule_tags[j]:
                    f.append(f"rule[{off}]=" + tag.removeprefix("B:"))
        if seen is not None:
            f.extend(seen[i])
        feats.append(f)
    return feats


class SpanAlignmentWarning(UserWarning):
    """Annotated entity spans that do not begin and end at token boundaries.

    The tagger labels whole tokens, so such a span is learned widened to the tokens
    it touches ("[5](amount)k" teaches the token "5k"), or not at all when it covers
    no token (only spaces). Training warns once, naming an example.
    """


def bio_labels(
    tokens: Sequence[Token],
    spans: Sequence[tuple[int, int, str]],
    scheme: str = "bio",
    *,
    misaligned: list[tuple[int, int, str]] | None = None,
) -> list[str]:
    """BIO (or IO) labels for tokens given ``(start, end, label)`` character spans.

    A token belongs to a span when they overlap; spans never share tokens. The IO
    scheme uses only ``I-`` labels: half the labels, a quarter of the CRF's
    label-pair work, at the price of merging two adjacent entities of one type.

    A span whose start or end falls inside a token labels the whole token (widened:
    the token is still that entity, which teaches the tagger more than leaving it
    ``O``); a span over no token labels nothing. Either way it is appended to
    ``misaligned`` when given, for the caller to report (see
    :class:`SpanAlignmentWarning`). ``tokens`` are in text order and do not overlap.
    """
    labels = [_OUTSIDE] * len(tokens)
    ends = [t.end for t in tokens]
    for start, end, label in spans:
        first = bisect_right(ends, start)  # the first token ending after the span starts
        last = first
        while last < len(tokens) and tokens[last].start < end:
            last += 1
        inside = range(first, last)
        if misaligned is not None and (
            not inside or tokens[first].start < start or tokens[last - 1].end > end
        ):
            misaligned.append((start, end, label))
        for k, i in enumerate(inside):
            if labels[i] == _OUTSIDE:
                labels[i] = ("B-" if k == 0 and scheme == "bio" else "I-") + label
    return labels


def decode(
    tokens: Sequence[Token], labels: Sequence[str], probs: Sequence[float]
) -> list[TaggedSpan]:
    """Turn BIO labels back into character spans (an ``I-`` without ``B-`` starts one)."""
    spans: list[TaggedSpan] = []
    current: list[int] = []
    current_label = ""

    def flush() -> None:
        if current:
            entity, _, role = current_label.partition("#")
            conf = sum(probs[i] for i in current) / len(current)
            spans.append(
                TaggedSpan(
                    tokens[current[0]].start, tokens[current[-1]].end, entity, role or None, conf
                )
            )

    for i, label in enumerate(labels):
        if label == _OUTSIDE:
            flush()
            current, current_label = [], ""
            continue
        prefix, _, name = label.partition("-")
        if prefix == "B" or name != current_label:
            flush()
            current, current_label = [i], name
        else:
            current.append(i)
    flush()
    return spans


def allowed_transitions(labels: Sequence[str]) -> npt.NDArray[np.bool_]:
    """``allowed[i, j]``: label ``j`` may follow label ``i`` (``I-x`` only after ``B-x``/``I-x``).

    Row ``len(labels)`` is the start of the sentence, where no ``I-`` may stand.
    """
    n = len(labels)
    allowed = np.ones((n + 1, n), dtype=bool)
    for j, y in enumerate(labels):
        if y.startswith("I-"):
            name = y[2:]
            allowed[:, j] = False
            for i, prev in enumerate(labels):
                allowed[i, j] = prev[2:] == name and prev != _OUTSIDE
    return allowed


def constrained_decode(
    probs: FloatArray, labels: Sequence[str], allowed: npt.NDArray[np.bool_] | None = None
) -> tuple[list[str], list[float]]:
    """The most probable BIO-consistent label sequence under per-token ``probs``.

    ``probs`` is ``(tokens, labels)``; the path maximises the sum of log-probabilities
    subject to :func:`allowed_transitions`. Returns the labels and, per token, the
    probability of its label.
    """
    if len(probs) == 0:
        return [], []
    ok = allowed if allowed is not None else allowed_transitions(labels)
    n_labels = len(labels)
    penalty = np.where(ok, 0.0, -np.inf)
    logp = np.log(np.clip(probs, 1e-12, None))
    score = logp[0] + penalty[n_labels]
    back = np.zeros((len(probs), n_labels), dtype=np.int64)
    for t in range(1, len(probs)):
        cand = score[:, None] + penalty[:n_labels]
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(n_labels)] + logp[t]
    path = [int(score.argmax())]
    for t in range(len(probs) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    path.reverse()
    return [labels[j] for j in path], [float(probs[t, j]) for t, j in enumerate(path)]


class CrfTagger:
    """A linear-chain CRF (CRFsuite, L-BFGS with elastic-net regularisation).

    >>> tagger = CrfTagger().fit(sequences, labels)
    >>> tagger.tag(features)
    """

    def __init__(
        self,
        *,
        algorithm: str = "lbfgs",
        c1: float = 0.05,
        c2: float = 0.01,
        max_iterations: int = 100,
        min_freq: int = 1,
    ) -> None:
        self.algorithm = algorithm
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.min_freq = min_freq
        self._model: bytes | None = None
        self._tagger: pycrfsuite.Tagger | None = None
        self._weights: CrfWeights | None = None  # for marginals, read out when first asked
        #: How training went: seconds, iterations run and planned, and whether a time
        #: budget cut them (see :meth:`fit`).
        self.fit_info: dict[str, Any] = {}

    def fit(
        self,
        features: Sequence[list[list[str]]],
        labels: Sequence[list[str]],
        progress: Callable[[int, int], None] | None = None,
        *,
        time_budget_s: float | None = None,
    ) -> CrfTagger:
        """Train on feature sequences and their BIO labels.

        ``progress(done, total)`` is called after each iteration (L-BFGS) or epoch
        (passive-aggressive).

        ``time_budget_s``: wall-clock seconds the training should end within. After
        the first few iterations the time per iteration is known; when all
        ``max_iterations`` would not fit, that run stops and training starts again
        with as many iterations as fit (at least :data:`MIN_ITERATIONS`), and
        :attr:`fit_info` says so (``shortened_by_time_budget``). CRFsuite cannot
        stop early and keep its weights, hence the second run; the first costs a
        few iterations and the feature generation.
        """
        started = time.monotonic()
        deadline = None if time_budget_s is None else started + time_budget_s
        pairs = [(x, y) for x, y in zip(features, labels, strict=True) if x]
        planned = self.max_iterations
        try:
            model = self._train(pairs, planned, progress, deadline)
            iterations = planned
        except _OutOfTime as late:
            # the second run repeats the first's iterations (same data, same path),
            # then each further one is projected to cost what those did on average
            left = late.deadline - time.monotonic() - late.prepare_s - late.elapsed
            more = math.floor(left / late.per_iteration)
            iterations = max(MIN_ITERATIONS, min(planned - 1, late.done + more))
            model = self._train(pairs, iterations, progress, None)
        self._set_model(model)
        self.fit_info = {
            "seconds": round(time.monotonic() - started, 2),
            "steps": iterations,
            "planned_steps": planned,
            "shortened_by_time_budget": iterations < planned,
        }
        return self

    def _train(
        self,
        pairs: list[tuple[list[list[str]], list[str]]],
        iterations: int,
        progress: Callable[[int, int], None] | None,
        deadline: float | None,
    ) -> bytes:
        trainer = _Trainer(progress, iterations, deadline)
        trainer.select(self.algorithm, "crf1d")
        params: dict[str, object] = {
            "max_iterations": iterations,
            "feature.possible_transitions": True,
            "feature.minfreq": self.min_freq,
        }
        if self.algorithm == "lbfgs":
            params.update({"c1": self.c1, "c2": self.c2})
        trainer.set_params(params)
        for xseq, yseq in pairs:
            trainer.append(xseq, yseq)
        fd, name = tempfile.mkstemp(suffix=".crfsuite")
        os.close(fd)
        try:
            trainer.train(name)
            return Path(name).read_bytes()
        finally:
            Path(name).unlink(missing_ok=True)

    def _set_model(self, model: bytes) -> None:
        # CRFsuite trusts the file: a truncated one makes it read past the buffer and
        # crash the process, so the structure is checked here first
        problem = crfsuite_problem(model)
        if problem is not None:
            raise ModelError(f"the CRFsuite model is corrupt: {problem}; retrain the model")
        tagger = pycrfsuite.Tagger()
        try:
            tagger.open_inmemory(model)
        except (ValueError, OSError) as exc:
            raise ModelError(f"CRFsuite cannot read the model ({exc}); retrain the model") from exc
        self._model = model
        self._tagger = tagger
        self._weights = None

    def tag(self, features: list[list[str]]) -> tuple[list[str], list[float]]:
        """The best label sequence and, per token, its span's confidence.

        A span's confidence is the marginal probability of its first token's label;
        tokens labelled ``O`` get 1.0 (nothing reads their confidence).
        """
        if self._tagger is None:
            raise ModelError("the tagger is not trained")
        if not features:
            return [], []
        tagger = self._tagger
        labels: list[str] = tagger.tag(features)
        # CRFsuite runs forward-backward at the first marginal asked (~0.13 ms with
        # ATIS's 121 labels; later ones read its table): one per span, its first
        # token's, shared by the rest
        probs: list[float] = []
        previous = _OUTSIDE
        for i, y in enumerate(labels):
            if y == _OUTSIDE:
                probs.append(1.0)
            elif y.startswith("B-") or y[2:] != previous[2:] or previous == _OUTSIDE:
                probs.append(tagger.marginal(y, i))
            else:
                probs.append(probs[-1])
            previous = y
        return labels, probs

    @property
    def labels(self) -> list[str]:
        """The labels the CRF knows, in the column order of :meth:`marginals`."""
        if self._tagger is None:
            raise ModelError("the tagger is not trained")
        labels: list[str] = self._tagger.labels()
        return labels

    def marginals(self, features: list[list[str]]) -> FloatArray:
        """Per token, the marginal probability of each label in :attr:`labels`.

        Computed in numpy from the model's weights (:mod:`.crf_marginals`, read out on
        the first call): ~0.23 ms for a 12-token ATIS message, where asking CRFsuite
        label by label took ~1.0 ms.
        """
        weights = self._weights
        if weights is None:
            if self._tagger is None:
                raise ModelError("the tagger is not trained")
            # built once; two threads racing here build the same thing
            weights = self._weights = CrfWeights.from_info(self._tagger.info(), self.labels)
        return weights.marginals(features)

    def params(self) -> dict[str, object]:
        """The constructor parameters."""
        return {
            "algorithm": self.algorithm,
            "c1": self.c1,
            "c2": self.c2,
            "max_iterations": self.max_iterations,
            "min_freq": self.min_freq,
        }

    def save(self, path: Path) -> None:
        """Write the CRFsuite model file."""
        if self._model is None:
            raise ModelError("the tagger is not trained")
        path.write_bytes(self._model)

    @property
    def model_bytes(self) -> bytes | None:
        """The trained CRFsuite model file's bytes (None before training)."""
        return self._model

    @classmethod
    def from_bytes(cls, model: bytes, **params: Any) -> CrfTagger:
        """A tagger from model bytes (see :attr:`model_bytes`) and constructor params.

        Raises :class:`ModelError` when the bytes are not a whole CRFsuite model.
        """
        tagger = cls(**params)
        tagger._set_model(model)
        return tagger

    @classmethod
    def load(cls, path: Path, *, size: int | None = None, sha256: str | None = None) -> CrfTagger:
        """Read a model file written by :meth:`save`.

        ``size`` and ``sha256``, when given (:meth:`NluModel.save
        <intentbridge.understanding.model.NluModel.save>` records them), must match the
        file: the structure check catches a truncated file, only the digest a byte
        changed inside it. Raises :class:`ModelError`, naming the file, when it is
        missing, damaged or not a CRFsuite model.
        """
        retrain = "retrain the model with `intentbridge nlu train`"
        try:
            model = path.read_bytes()
        except OSError as exc:
            raise ModelError(
                f"{path}: cannot read the CRF model ({exc.strerror}); {retrain}"
            ) from exc
        if (size is not None and len(model) != size) or (
            sha256 is not None and hashlib.sha256(model).hexdigest() != sha256
        ):
            raise ModelError(
                f"{path}: does not match the size and SHA-256 that metadata.json records "
                f"({len(model)} bytes, {size} recorded): the file is damaged or was replaced; "
                f"{retrain}"
            )
        tagger = cls()
        try:
            tagger._set_model(model)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from exc
        return tagger

    def __getstate__(self) -> dict[str, object]:
        # the native tagger cannot be pickled; the model bytes can
        return {"params": self.params(), "model": self._model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        params = state["params"]
        self.algorithm = str(params["algorithm"])
        self.c1 = float(params["c1"])
        self.c2 = float(params["c2"])
        self.max_iterations = int(params["max_iterations"])
        self.min_freq = int(params["min_freq"])
        self._model = None
        self._tagger = None
        model = state["model"]
        if isinstance(model, bytes):
            self._set_model(model)


#: The fewest iterations (L-BFGS) or epochs (passive-aggressive) a time budget leaves.
MIN_ITERATIONS = 10
#: Iterations timed before the rest is projected (the first ones vary the most).
_MEASURED_ITERATIONS = 3


class _OutOfTime(Exception):
    """Raised from the trainer's log callback: the planned iterations will not fit."""

    def __init__(
        self, done: int, elapsed: float, per_iteration: float, prepare_s: float, deadline: float
    ) -> None:
        super().__init__(f"{done} iterations in {elapsed:.1f} s")
        self.done = done
        self.elapsed = elapsed  # seconds those iterations took
        self.per_iteration = per_iteration  # projected seconds of each further one
        self.prepare_s = prepare_s  # reading the data and generating the features
        self.deadline = deadline


class _Trainer(pycrfsuite.Trainer):  # type: ignore[misc]
    """Reports iterations to a progress callback instead of printing and, after the
    first :data:`_MEASURED_ITERATIONS`, stops training (by raising :class:`_OutOfTime`,
    which CRFsuite's wrapper carries out of ``train``) if the rest would end after
    ``deadline``.

    The projection assumes each further iteration costs what the first ones did on
    average. L-BFGS's early iterations may try many step sizes (SGD's fourth took 15
    passes over the data, 32 s; from the tenth on, one each, 2 s), and such a hump
    after the check is not foreseen. The check is made once, early, so that a
    stopped run wastes little. pycrfsuite calls ``on_iteration`` only when verbose,
    so the log is read here.
    """

    def __init__(
        self, progress: Callable[[int, int], None] | None, total: int, deadline: float | None
    ) -> None:
        super().__init__(verbose=False)
        self._progress = progress
        self._total = total
        self._deadline = deadline
        self._started = time.monotonic()
        self._prepared: float | None = None

    def message(self, message: str) -> None:
        event = self.logparser.feed(message)
        now = time.monotonic()
        if event == "prepared":
            self._prepared = now
        if event != "iteration":
            return
        num = self.logparser.last_iteration.get("num", 0)
        done = int(num) if isinstance(num, int) else 0
        if self._progress is not None:
            self._progress(done, self._total)
        if self._deadline is None or self._prepared is None or done != _MEASURED_ITERATIONS:
            return
        elapsed = now - self._prepared
        per_iteration = elapsed / done
        if now + per_iteration * (self._total - done) > self._deadline:
            prepare_s = self._prepared - self._started
            raise _OutOfTime(done, elapsed, per_iteration, prepare_s, self._deadline)
