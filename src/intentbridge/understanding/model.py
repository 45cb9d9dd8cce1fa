"""The trained NLU model: intent models + calibration + entity recognition.

>>> model = NluModel.train(load_training_data("data/"), pipeline="fast")
>>> model.save("models/nlu")
>>> NluModel.load("models/nlu").parse("move 50 euros to savings").intent
'transfer_money'

A saved model is a directory::

    metadata.json       format version, pipeline, intents, threshold, timings
    rules.json          lookup tables, synonyms, regexes, entity merge policy
    tagger.crfsuite     the CRF (only when the data has entities)
    intent/0-sparse/    one sub-directory per intent model

Loading runs code from the model files (joblib pickles): load only models you trained.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import datetime as dt
import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intentbridge.errors import ModelError
from intentbridge.types import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, IntentScore, Interpretation
from intentbridge.understanding.calibration import (
    Calibration,
    FloatArray,
    IntArray,
    choose_threshold,
    choose_weights,
    fit_temperature,
)
from intentbridge.understanding.data import TrainingData
from intentbridge.understanding.entities import EntityRecognizer
from intentbridge.understanding.extractors.base import RuleExtractors
from intentbridge.understanding.intent import IntentModel
from intentbridge.understanding.pipeline import get_pipeline, intent_model_class, make_intent_model
from intentbridge.understanding.tagger import CrfTagger
from intentbridge.understanding.tokenizer import tokenize

FORMAT_VERSION = 1
"""Bumped whenever a saved model from an older version cannot be read correctly."""

Progress = Callable[[str, float], None]
"""``progress(stage, fraction_done)``; stages: "intent", "entities", "done"."""

_RANKING_SIZE = 10
_SMALL_DATA = 3000  # below this, out-of-fold predictions from k folds; above, one split
_HOLDOUT_FRACTION = 0.15
_PARALLEL_MIN_EXAMPLES = 2000  # below this, a second process costs more than it saves


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
        self._columns = [_column_map(m.classes_, self.classes) for m in self.intent_models]

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
    ) -> NluModel:
        """Train a model of the named pipeline on ``data``.

        ``intent_params`` overrides constructor parameters per intent model kind
        (e.g. ``{"sparse": {"C": 0.5}}``); ``crf_params`` those of the CRF tagger.
        """
        started = time.perf_counter()
        spec = get_pipeline(pipeline)
        report = progress or (lambda stage, frac: None)
        if not data.examples:
            raise ModelError("no training examples")
        texts = [ex.text for ex in data.examples]
        labels = [ex.intent for ex in data.examples]
        classes = sorted(set(labels))
        params = {
            k: {**spec.params.get(k, {}), **(intent_params or {}).get(k, {})}
            for k in spec.intent_models
        }

        known_words = {t.text.lower() for text in texts for t in tokenize(text)}
        rules_config: dict[str, Any] = {
            "lookup_tables": data.lookup_tables,
            "synonyms": data.all_synonyms(),
            "regexes": data.regexes,
            "fuzzy_threshold": fuzzy_threshold,
            "known_words": known_words,
        }
        rules = RuleExtractors(today=today, **rules_config)
        # 50 L-BFGS iterations reach all but ~0.3 F1 on SNIPS/ATIS at half the time of
        # 100; small bot data converges cheaply, so it gets the full 100.
        crf_params = {
            "max_iterations": 100 if len(data.examples) < _PARALLEL_MIN_EXAMPLES else 50,
            **(crf_params or {}),
        }
        # The CRF holds the GIL for its whole training run; on large data it trains in
        # a second process while this one fits the intent models (2 cores, ~2x faster).
        remote = (
            _start_entity_training(data, rules_config, crf_params)
            if data.has_entities and len(data.examples) >= _PARALLEL_MIN_EXAMPLES
            else None
        )

        report("intent", 0.0)
        if len(classes) >= 2:
            calibration = _fit_calibration(
                spec.intent_models, params, texts, labels, classes=classes, seed=seed, report=report
            )
            models = [
                make_intent_model(k, params[k]).fit(texts, labels) for k in spec.intent_models
            ]
        else:
            # one intent: nothing to classify; every message gets it, with confidence 1
            calibration = Calibration(weights=tuple(1.0 for _ in spec.intent_models))
            models = [_ConstantIntent(classes[0]) for _ in spec.intent_models]
        report("intent", 1.0)

        report("entities", 0.0)
        entities = _finish_entity_training(remote, rules) if remote is not None else None
        if entities is None:
            entities = EntityRecognizer.train(
                data,
                rules=rules,
                crf_params=crf_params,
                progress=lambda done, total: report("entities", done / max(total, 1)),
            )
        report("entities", 1.0)
        info = {
            "training_seconds": round(time.perf_counter() - started, 3),
            "n_examples": len(data.examples),
            "entity_labels": sorted({sp.label for ex in data.examples for sp in ex.entities}),
            "fuzzy_threshold": fuzzy_threshold,
            "seed": seed,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        model = cls(
            pipeline=pipeline,
            kinds=spec.intent_models,
            intent_models=models,
            classes=classes,
            calibration=calibration,
            entities=entities,
            info=info,
        )
        report("done", 1.0)
        return model

    # --- parsing ------------------------------------------------------------------

    def intent_probabilities(self, texts: list[str]) -> FloatArray:
        """Calibrated intent probabilities, columns in the order of :attr:`classes`."""
        per_model = []
        for model, cols in zip(self.intent_models, self._columns, strict=True):
            raw = model.predict_proba(texts)
            aligned = np.zeros((len(texts), len(self.classes)))
            aligned[:, cols] = raw
            per_model.append(aligned)
        return self.calibration.apply(per_model)

    def parse(self, text: str) -> Interpretation:
        """Interpret one message."""
        return self._interpret(text, self.intent_probabilities([text])[0])

    def parse_batch(self, texts: Sequence[str]) -> list[Interpretation]:
        """Interpret many messages; intent scoring is vectorised."""
        texts = list(texts)
        if not texts:
            return []
        probs = self.intent_probabilities(texts)
        return [self._interpret(t, p) for t, p in zip(texts, probs, strict=True)]

    def _interpret(self, text: str, probs: FloatArray) -> Interpretation:
        order = np.argsort(-probs)[:_RANKING_SIZE]
        ranking = tuple(IntentScore(str(self.classes[i]), float(probs[i])) for i in order)
        best = ranking[0]
        intent = best.name if best.confidence >= self.calibration.threshold else FALLBACK_INTENT
        return Interpretation(
            text=text,
            intent=intent,
            confidence=best.confidence,
            entities=self.entities.extract(text),
            ranking=ranking,
        )

    # --- persistence --------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the model to ``directory`` (created if missing); returns the path."""
        root = Path(directory)
        (root / "intent").mkdir(parents=True, exist_ok=True)
        for i, (kind, model) in enumerate(zip(self.kinds, self.intent_models, strict=True)):
            sub = root / "intent" / f"{i}-{kind}"
            sub.mkdir(parents=True, exist_ok=True)
            model.save(sub)
        tagger_path = root / "tagger.crfsuite"
        if self.entities.tagger is not None:
            self.entities.tagger.save(tagger_path)
        else:
            tagger_path.unlink(missing_ok=True)
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
            "intents": [str(c) for c in self.classes],
            "calibration": {
                "weights": list(self.calibration.weights),
                "temperature": self.calibration.temperature,
                "threshold": self.calibration.threshold,
            },
            "has_tagger": self.entities.tagger is not None,
            **self.info,
        }
        (root / "metadata.json").write_text(
            json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        return root

    @classmethod
    def load(cls, directory: Path | str, *, today: Callable[[], dt.date] | None = None) -> NluModel:
        """Load a model written by :meth:`save`.

        Raises :class:`ModelError` when the directory is not a model or was written by
        an incompatible version (retrain it then).
        """
        root = Path(directory)
        meta_path = root / "metadata.json"
        if not meta_path.is_file():
            raise ModelError(
                f"{root} is not an NLU model (no metadata.json); "
                "train one with `intentbridge nlu train`"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            rules_doc = json.loads((root / "rules.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"{root}: model files are unreadable ({exc}); retrain the model"
            ) from exc
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"{root}: model format version {version} is not supported (this intentbridge "
                f"reads version {FORMAT_VERSION}); retrain the model with `intentbridge nlu train`"
            )
        try:
            kinds = list(meta["intent_models"])
            models: list[IntentModel] = []
            for i, kind in enumerate(kinds):
                sub = root / "intent" / f"{i}-{kind}"
                if (sub / _ConstantIntent.FILE).is_file():
                    models.append(_ConstantIntent.load(sub))
                else:
                    models.append(intent_model_class(kind).load(sub))
            tagger = CrfTagger.load(root / "tagger.crfsuite") if meta.get("has_tagger") else None
            cal = meta["calibration"]
            calibration = Calibration(
                weights=tuple(float(w) for w in cal["weights"]),
                temperature=float(cal["temperature"]),
                threshold=float(cal["threshold"]),
            )
            rules = RuleExtractors(
                lookup_tables=rules_doc["lookup_tables"],
                synonyms=rules_doc["synonyms"],
                regexes=rules_doc["regexes"],
                today=today,
                fuzzy_threshold=float(rules_doc["fuzzy_threshold"]),
                known_words=rules_doc["known_words"],
            )
            entities = EntityRecognizer(
                rules,
                tagger,
                entity_kinds=rules_doc["entity_kinds"],
                emit=rules_doc["emit"],
                role_entities=rules_doc["role_entities"],
            )
            info = {k: v for k, v in meta.items() if k not in _META_STRUCTURE}
            return cls(
                pipeline=str(meta["pipeline"]),
                kinds=kinds,
                intent_models=models,
                classes=meta["intents"],
                calibration=calibration,
                entities=entities,
                info=info,
            )
        except (KeyError, OSError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{root}: model files are incomplete or corrupt ({exc}); retrain the model"
            ) from exc


_META_STRUCTURE = frozenset(
    {"format_version", "pipeline", "intent_models", "intents", "calibration", "has_tagger"}
)


def _column_map(model_classes: Any, classes: Any) -> list[int]:
    index = {str(c): i for i, c in enumerate(classes)}
    return [index[str(c)] for c in model_classes]


def _fit_calibration(
    kinds: Sequence[str],
    params: dict[str, dict[str, Any]],
    texts: list[str],
    labels: list[str],
    *,
    classes: list[str],
    seed: int,
    report: Progress,
) -> Calibration:
    """Weights, temperature and threshold from out-of-fold predictions."""
    folds = _folds(labels, seed)
    index = {c: i for i, c in enumerate(classes)}
    gold_all = np.array([index[y] for y in labels], dtype=np.int64)
    probs_per_kind: list[FloatArray] = [np.zeros((len(texts), len(classes))) for _ in kinds]
    covered = np.zeros(len(texts), dtype=bool)
    steps = len(folds) * len(kinds)
    done = 0
    for held in folds:
        train_mask = np.ones(len(texts), dtype=bool)
        train_mask[held] = False
        tr_labels = [labels[i] for i in np.flatnonzero(train_mask)]
        if len(set(tr_labels)) < 2:
            continue
        tr_texts = [texts[i] for i in np.flatnonzero(train_mask)]
        held_texts = [texts[i] for i in held]
        for k, kind in enumerate(kinds):
            model = make_intent_model(kind, params[kind]).fit(tr_texts, tr_labels)
            cols = _column_map(model.classes_, classes)
            probs_per_kind[k][np.ix_(held, cols)] = model.predict_proba(held_texts)
            done += 1
            report("intent", 0.5 * done / steps)
        covered[held] = True
    if not covered.any():
        return Calibration(weights=tuple(1.0 for _ in kinds))
    sel = np.flatnonzero(covered)
    probs = [p[sel] for p in probs_per_kind]
    gold: IntArray = gold_all[sel]
    weights = choose_weights(probs, gold)
    mixed = Calibration(weights=weights).apply(probs)
    temperature = fit_temperature(mixed, gold)
    calibrated = Calibration(weights=weights, temperature=temperature).apply(probs)
    oos = index.get(OUT_OF_SCOPE_INTENT)
    threshold = choose_threshold(calibrated, gold, oos_index=oos)
    return Calibration(weights=weights, temperature=temperature, threshold=threshold)


def _folds(labels: list[str], seed: int) -> list[list[int]]:
    """Stratified held-out index sets: k folds on small data, one split on large."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    if len(labels) >= _SMALL_DATA:
        held: list[int] = []
        for idx in by_class.values():
            perm = rng.permutation(idx)
            held.extend(int(i) for i in perm[: round(len(idx) * _HOLDOUT_FRACTION)])
        return [sorted(held)]
    k = 5
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for idx in by_class.values():
        perm = rng.permutation(idx)
        for j, i in enumerate(perm):
            folds[(offset + j) % k].append(int(i))
        offset += len(idx)  # rotate so small classes do not all land in fold 0
    return [sorted(f) for f in folds if f]


def _train_entities_in_child(
    data: TrainingData, rules_config: dict[str, Any], crf_params: dict[str, Any] | None
) -> tuple[bytes | None, dict[str, Any], dict[str, Any]]:
    """Child-process entry point: returns what the parent needs to rebuild the result."""
    rules = RuleExtractors(**rules_config)
    recognizer = EntityRecognizer.train(data, rules=rules, crf_params=crf_params)
    tagger = recognizer.tagger
    if tagger is None:
        return None, {}, recognizer.config()
    return tagger.model_bytes, tagger.params(), recognizer.config()


_Remote = tuple[concurrent.futures.ProcessPoolExecutor, "concurrent.futures.Future[Any]"]


def _start_entity_training(
    data: TrainingData, rules_config: dict[str, Any], crf_params: dict[str, Any] | None
) -> _Remote | None:
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        return pool, pool.submit(_train_entities_in_child, data, rules_config, crf_params)
    except (OSError, RuntimeError):
        return None  # no subprocesses here (sandbox, frozen app): train in-process


def _finish_entity_training(remote: _Remote, rules: RuleExtractors) -> EntityRecognizer | None:
    pool, future = remote
    try:
        model_bytes, tagger_params, config = future.result()
    except (OSError, RuntimeError, concurrent.futures.process.BrokenProcessPool):
        return None
    finally:
        pool.shutdown()
    tagger = CrfTagger.from_bytes(model_bytes, **tagger_params) if model_bytes else None
    return EntityRecognizer(
        rules,
        tagger,
        entity_kinds=config["entity_kinds"],
        emit=config["emit"],
        role_entities=config["role_entities"],
    )


class _ConstantIntent:
    """The intent "model" of single-intent data: always that intent."""

    FILE = "constant_intent.json"

    def __init__(self, intent: str) -> None:
        self.classes_ = np.array([intent], dtype=object)

    def fit(self, texts: list[str], labels: list[str]) -> _ConstantIntent:
        return self

    def predict_proba(self, texts: list[str]) -> FloatArray:
        return np.ones((len(texts), 1))

    def save(self, directory: Path) -> None:
        (directory / self.FILE).write_text(
            json.dumps({"intent": str(self.classes_[0])}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> _ConstantIntent:
        return cls(json.loads((directory / cls.FILE).read_text(encoding="utf-8"))["intent"])
