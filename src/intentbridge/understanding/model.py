"""The trained NLU model: intent models + calibration + entity recognition.

>>> model = NluModel.train(load_training_data("data/"), pipeline="fast")
>>> model.save("models/nlu")
>>> NluModel.load("models/nlu").parse("move 50 euros to savings").intent
'transfer_money'

A saved model is a directory::

    metadata.json       format version, pipeline, intents, threshold, timings,
                        the CRF file's size and SHA-256
    rules.json          lookup tables, synonyms, regexes, entity merge policy
    tagger.crfsuite     the CRF (only when the data has entities)
    dense_tagger/       the accurate pipeline's transformer tagger (trained layers only)
    intent/0-sparse/    one sub-directory per intent model

:meth:`NluModel.save` writes a new directory and swaps it in, so saving over an older
model leaves none of its files behind; :meth:`NluModel.load` turns any damaged file into
a :class:`~intentbridge.errors.ModelError` that names it.

Built-in intent models are saved as numpy arrays and JSON, the CRF as a CRFsuite file;
loading needs neither scikit-learn nor scipy. A model kind registered by a plug-in may
use pickles: load only models you trust.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intentbridge.errors import ModelError
from intentbridge.types import FALLBACK_INTENT, IntentScore, Interpretation
from intentbridge.understanding.calibration import Calibration, FloatArray
from intentbridge.understanding.entities import EntityRecognizer
from intentbridge.understanding.extractors.base import RuleExtractors
from intentbridge.understanding.intent import IntentModel, char_wb_ngrams, word_ngrams
from intentbridge.understanding.model_files import (
    check_archives,
    new_sibling,
    optional_float,
    os_reason,
    read_json_object,
    reading,
    refuse_to_replace,
    string_list,
    swap_in,
)
from intentbridge.understanding.pipeline import dense_tagger_class, intent_model_class
from intentbridge.understanding.tagger import CrfTagger

if TYPE_CHECKING:
    from intentbridge.understanding.data import TrainingData

FORMAT_VERSION = 2
"""Bumped whenever a saved model from an older version cannot be read correctly.

2: the sparse intent model is saved as numpy arrays + JSON (no pickles).
"""

Progress = Callable[[str, float], None]
"""``progress(stage, fraction_done)``; stages: "intent", "entities", "done"."""

_RANKING_SIZE = 10


class NluModel:
    """Understands messages: intent with a calibrated confidence, and entities.

    Build one with :meth:`train` or :meth:`load`; then :meth:`parse` (about a
    millisecond) or :meth:`parse_batch`.
    """

    def __init__(
        self,
        *,
        pipeline: str,
        kinds: Sequence[str],
        intent_models: Sequence[IntentModel],
        classes: Sequence[str],
        calibration: Calibration,
        entities: EntityRecognizer,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.kinds = tuple(kinds)
        self.intent_models = list(intent_models)
        self.classes = np.asarray(classes, dtype=object)
        self.calibration = calibration
        self.entities = entities
        self.info: dict[str, Any] = dict(info or {})
        # column maps from each model's own class order to ours
        self._columns = [column_map(m.classes_, self.classes) for m in self.intent_models]

    # --- training -----------------------------------------------------------------

    @classmethod
    def train(
        cls,
        data: TrainingData,
        pipeline: str = "fast",
        progress: Progress | None = None,
        *,
        seed: int = 0,
        today: Callable[[], dt.date] | None = None,
        fuzzy_threshold: float = 85.0,
        intent_params: dict[str, dict[str, Any]] | None = None,
        crf_params: dict[str, Any] | None = None,
        tagger_params: dict[str, Any] | None = None,
        unseen_weight: float = 0.0,
    ) -> NluModel:
        """Train a model of the named pipeline on ``data`` (see :mod:`.training`).

        ``intent_params`` overrides constructor parameters per intent model kind
        (e.g. ``{"sparse": {"C": 0.5}}``); ``crf_params`` those of the CRF tagger;
        ``tagger_params`` those of the accurate pipeline's transformer tagger
        (:class:`~.dense_tagger.DenseTokenTagger`, plus ``crf_weight``).
        ``unseen_weight`` > 0, for data without ``oos`` examples, lets the bot's own
        intents stand in for out-of-scope messages when the fallback threshold is
        chosen (0.03: CLINC150 without its ``oos`` examples rejects 59 % of
        out-of-scope messages instead of none, for 0.8 points of in-scope accuracy;
        :func:`~.calibration.choose_threshold`, docs/nlu.md).
        Training needs scikit-learn and scipy; loading and parsing need neither.
        """
        from intentbridge.understanding.training import train_model

        return train_model(
            cls,
            data,
            pipeline,
            progress,
            seed=seed,
            today=today,
            fuzzy_threshold=fuzzy_threshold,
            intent_params=intent_params,
            crf_params=crf_params,
            tagger_params=tagger_params,
            unseen_weight=unseen_weight,
        )

    # --- parsing ------------------------------------------------------------------

    def intent_probabilities(self, texts: list[str]) -> FloatArray:
        """Calibrated intent probabilities, columns in the order of :attr:`classes`.

        Where the first intent model is sure enough (``calibration.first_sure``, chosen
        on held-out data so that it changes next to no decision), the others are not
        asked: in ``accurate``, most messages then skip the transformer.
        """
        first = self._aligned_probabilities(0, texts)
        sure = self.calibration.sure_of_first(first)
        rest = np.flatnonzero(~sure)
        out = np.empty_like(first)
        if sure.any():
            out[sure] = self.calibration.apply_first(first[sure])
        if len(rest):
            asked = [texts[i] for i in rest]
            others = range(1, len(self.intent_models))
            per_model = [first[rest], *(self._aligned_probabilities(k, asked) for k in others)]
            out[rest] = self.calibration.apply(per_model)
        return out

    def _aligned_probabilities(self, k: int, texts: list[str]) -> FloatArray:
        """The ``k``-th intent model's probabilities, columns as :attr:`classes`."""
        aligned = np.zeros((len(texts), len(self.classes)))
        aligned[:, self._columns[k]] = self.intent_models[k].predict_proba(texts)
        return aligned

    def parse(self, text: str) -> Interpretation:
        """Interpret one message.

        A lone surrogate in ``text`` (half of a UTF-16 pair, or an undecodable byte
        that Python escaped, as in a command-line argument that is not UTF-8) is not a
        character: it becomes U+FFFD first, one for one, and the interpretation's
        ``text`` is that cleaned text. Offsets are the same in both.
        """
        text = replace_lone_surrogates(text)
        return self._interpret(text, self.intent_probabilities([text])[0])

    def parse_batch(self, texts: Sequence[str]) -> list[Interpretation]:
        """Interpret many messages (cleaned as in :meth:`parse`); intent scoring is vectorised."""
        texts = [replace_lone_surrogates(t) for t in texts]
        if not texts:
            return []
        probs = self.intent_probabilities(texts)
        return [self._interpret(t, p) for t, p in zip(texts, probs, strict=True)]

    def knows_anything_in(self, text: str) -> bool:
        """Whether the intent models saw any of ``text``'s words or n-grams in training.

        Models that can tell (the TF-IDF one, in both pipelines) decide; a message
        with nothing they know ("", "   ", a row of symbols never seen) gets the
        fallback whatever the threshold, since any intent would be a guess from the
        class priors. Models that cannot tell abstain: they have no ``knows``, or it
        returns None.
        """
        answers = [
            answer
            for model in self.intent_models
            if (knows := getattr(model, "knows", None)) is not None
            and (answer := knows(text)) is not None
        ]
        return any(answers) or not answers

    def _interpret(self, text: str, probs: FloatArray) -> Interpretation:
        order = np.argsort(-probs)[:_RANKING_SIZE]
        ranking = tuple(IntentScore(str(self.classes[i]), float(probs[i])) for i in order)
        best = ranking[0]
        known = self.knows_anything_in(text)
        confident = best.confidence >= self.calibration.threshold
        return Interpretation(
            text=text,
            intent=best.name if known and confident else FALLBACK_INTENT,
            confidence=best.confidence,
            # the top intent even below the threshold: the tagger's best guess of context;
            # in a message of nothing known, the taggers' labels would be guesses too
            entities=self.entities.extract(text, best.name, learned=known),
            ranking=ranking,
        )

    # --- persistence --------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the model to ``directory``; returns the path.

        The files go into a new sibling directory that then takes the place of
        ``directory``: a failed save leaves what was there, and a model saved over an
        earlier one keeps none of its files. ``directory`` may be missing, empty or an
        earlier model; anything else (a file, a folder of other files) is refused with
        a :class:`ModelError` rather than deleted (see
        :func:`~.model_files.check_save_target`).
        """
        root = Path(directory)
        target = Path(os.path.realpath(root))  # a symlinked model folder is replaced where it is
        refuse_to_replace(root, target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = new_sibling(target, "saving")
        except OSError as exc:
            raise ModelError(f"cannot write the model to {root}: {os_reason(exc)}") from exc
        try:
            self._write(staging)
            swap_in(staging, target)
        except (OSError, UnicodeError) as exc:
            raise ModelError(f"cannot write the model to {root}: {os_reason(exc)}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # already gone after the swap
        return root

    def _write(self, root: Path) -> None:
        (root / "intent").mkdir()
        formats = []
        for i, (kind, model) in enumerate(zip(self.kinds, self.intent_models, strict=True)):
            sub = root / "intent" / f"{i}-{kind}"
            sub.mkdir()
            model.save(sub)
            formats.append(_CONSTANT if isinstance(model, ConstantIntent) else kind)
        tagger = self.entities.tagger
        tagger_bytes = tagger.model_bytes if tagger is not None else None
        if tagger is not None:
            tagger.save(root / _TAGGER_FILE)
        neural = self.entities.neural
        if neural is not None:
            neural.save(root / _DENSE_TAGGER_DIR)
        rules = self.entities.rules
        rules_doc = {
            "lookup_tables": rules.lookup_tables,
            "synonyms": rules.synonyms,
            "regexes": rules.regex_patterns,
            "known_words": sorted(rules.known_words),
            "fuzzy_threshold": rules.lookup.fuzzy_threshold,
            **self.entities.config(),
        }
        (root / "rules.json").write_text(
            json.dumps(rules_doc, ensure_ascii=False), encoding="utf-8"
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "pipeline": self.pipeline,
            "intent_models": list(self.kinds),
            # how each intent model was saved: load reads this, not which files exist
            "intent_model_formats": formats,
            "intents": [str(c) for c in self.classes],
            "calibration": {
                "weights": list(self.calibration.weights),
                "temperature": self.calibration.temperature,
                "threshold": self.calibration.threshold,
                "first_sure": self.calibration.first_sure,
                "first_temperature": self.calibration.first_temperature,
            },
            "has_tagger": tagger is not None,
            "has_dense_tagger": neural is not None,
            **self.info,
        }
        if tagger_bytes is not None:
            # CRFsuite reads its file unchecked; a damaged one can crash the process
            meta["tagger_file"] = {
                "bytes": len(tagger_bytes),
                "sha256": hashlib.sha256(tagger_bytes).hexdigest(),
            }
        (root / "metadata.json").write_text(
            json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path | str, *, today: Callable[[], dt.date] | None = None) -> NluModel:
        """Load a model written by :meth:`save`.

        Raises :class:`ModelError` when the directory is not a model, was written by an
        incompatible version, or holds a missing, truncated or damaged file (the error
        names it; retrain the model then).
        """
        root = Path(directory)
        meta_path = root / "metadata.json"
        if not meta_path.is_file():
            raise ModelError(
                f"{root} is not an NLU model (no metadata.json); "
                "train one with `intentbridge nlu train`"
            )
        meta = read_json_object(meta_path)
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"{root}: model format version {version} is not supported (this intentbridge "
                f"reads version {FORMAT_VERSION}); retrain the model with `intentbridge nlu train`"
            )
        rules_path = root / "rules.json"
        rules_doc = read_json_object(rules_path)
        with reading(meta_path):
            kinds = string_list(meta["intent_models"], "intent_models")
            intents = string_list(meta["intents"], "intents")
            formats = meta.get("intent_model_formats")  # missing in models saved before it
            if formats is not None and len(string_list(formats, "intent_model_formats")) != len(
                kinds
            ):
                raise ValueError("intent_model_formats and intent_models differ in length")
            cal = meta["calibration"]
            calibration = Calibration(
                weights=tuple(float(w) for w in cal["weights"]),
                temperature=float(cal["temperature"]),
                threshold=float(cal["threshold"]),
                # models saved before the cascade ask every intent model
                first_sure=optional_float(cal.get("first_sure")),
                first_temperature=float(cal.get("first_temperature", 1.0)),
            )
        models: list[IntentModel] = []
        for i, kind in enumerate(kinds):
            sub = root / "intent" / f"{i}-{kind}"
            with reading(sub):
                constant = (
                    formats[i] == _CONSTANT
                    if formats is not None
                    else (sub / ConstantIntent.FILE).is_file()
                )
                if constant:
                    models.append(ConstantIntent.load(sub))
                else:
                    model_class = intent_model_class(kind)
                    check_archives(sub)
                    models.append(model_class.load(sub))
        tagger = (
            _load_tagger(root / _TAGGER_FILE, meta.get("tagger_file"), meta_path)
            if meta.get("has_tagger")
            else None
        )
        with reading(rules_path):
            rules = RuleExtractors(
                lookup_tables=rules_doc["lookup_tables"],
                synonyms=rules_doc["synonyms"],
                regexes=rules_doc["regexes"],
                today=today,
                fuzzy_threshold=float(rules_doc["fuzzy_threshold"]),
                known_words=rules_doc["known_words"],
            )
        neural = None
        if meta.get("has_dense_tagger"):
            with reading(root / _DENSE_TAGGER_DIR):
                neural = dense_tagger_class().load(root / _DENSE_TAGGER_DIR)
        with reading(rules_path):
            entities = EntityRecognizer.from_config(rules, tagger, rules_doc, neural)
        info = {k: v for k, v in meta.items() if k not in _META_STRUCTURE}
        with reading(meta_path):
            return cls(
                pipeline=str(meta["pipeline"]),
                kinds=kinds,
                intent_models=models,
                classes=intents,
                calibration=calibration,
                entities=entities,
                info=info,
            )


_META_STRUCTURE = frozenset(
    {
        "format_version",
        "pipeline",
        "intent_models",
        "intents",
        "calibration",
        "has_tagger",
        "has_dense_tagger",
        "intent_model_formats",
        "tagger_file",
    }
)
_DENSE_TAGGER_DIR = "dense_tagger"
_TAGGER_FILE = "tagger.crfsuite"
_CONSTANT = "constant"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, one for one.

    >>> replace_lone_surrogates("caf\udce9")
    'caf\ufffd'
    """
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


def _load_tagger(path: Path, record: Any, meta_path: Path) -> CrfTagger:
    """The CRF, checked against the size and SHA-256 that metadata.json records
    (models saved before the record get only :func:`~.crfsuite_file.crfsuite_problem`)."""
    if record is None:
        return CrfTagger.load(path)
    with reading(meta_path):
        size, digest = int(record["bytes"]), str(record["sha256"])
    return CrfTagger.load(path, size=size, sha256=digest)


def column_map(model_classes: Any, classes: Any) -> list[int]:
    index = {str(c): i for i, c in enumerate(classes)}
    return [index[str(c)] for c in model_classes]


class ConstantIntent:
    """The intent "model" of single-intent data: that intent, for what it knows.

    It remembers the lower-cased words of its training messages, so that
    :meth:`knows` can tell a message with nothing known (it gets the fallback) the way
    the TF-IDF model does. With no second intent there is no threshold to catch a
    message that shares only a letter pair with training, so a message counts as known
    when it shares a word or a character 3- to 5-gram (inside padded words).

    >>> ConstantIntent("greet").fit(["hello there"], ["greet"]).knows("hello!")
    True
    """

    FILE = "constant_intent.json"

    def __init__(self, intent: str, words: Iterable[str] | None = None) -> None:
        self.classes_ = np.array([intent], dtype=object)
        #: None for a model saved before it remembered words: it cannot tell (abstains)
        self.words: frozenset[str] | None = None
        self._tokens: frozenset[str] = frozenset()
        self._grams: frozenset[str] = frozenset()
        if words is not None:
            self._learn(words)

    def _learn(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        self._tokens = frozenset(t for w in self.words for t in word_ngrams(w, 1, 1))
        self._grams = frozenset(g for w in self.words for g in char_wb_ngrams(w, 3, 5))

    def fit(self, texts: list[str], labels: list[str]) -> ConstantIntent:
        """Remember the words of ``texts``."""
        self._learn(w for text in texts for w in text.lower().split())
        return self

    def predict_proba(self, texts: list[str]) -> FloatArray:
        return np.ones((len(texts), 1))

    def knows(self, text: str) -> bool | None:
        """Whether ``text`` shares a word or a 3-5 character n-gram with training
        (None when the model does not know its training words)."""
        if self.words is None:
            return None
        return any(t in self._tokens for t in word_ngrams(text, 1, 1)) or any(
            g in self._grams for g in char_wb_ngrams(text, 3, 5)
        )

    def save(self, directory: Path) -> None:
        doc: dict[str, Any] = {"intent": str(self.classes_[0])}
        if self.words is not None:
            doc["words"] = sorted(self.words)
        (directory / self.FILE).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> ConstantIntent:
        doc = json.loads((directory / cls.FILE).read_text(encoding="utf-8"))
        words = doc.get("words")
        if words is not None and not (
            isinstance(words, list) and all(isinstance(w, str) for w in words)
        ):
            raise TypeError("'words' must be a list of strings")
        return cls(str(doc["intent"]), words)
