"""The trained NLU model: intent models + calibration + entity recognition.

>>> model = NluModel.train(load_training_data("data/"), pipeline="fast")
>>> model.save("models/nlu")
>>> NluModel.load("models/nlu").parse("move 50 euros to savings").intent
'transfer_money'

A saved model is a directory::

    metadata.json       format version, pipeline, intents, threshold, timings
    rules.json          lookup tables, synonyms, regexes, entity merge policy
    tagger.crfsuite     the CRF (only when the data has entities)
    dense_tagger/       the accurate pipeline's transformer tagger (trained layers only)
    intent/0-sparse/    one sub-directory per intent model

Built-in intent models are saved as numpy arrays and JSON, the CRF as a CRFsuite file;
loading needs neither scikit-learn nor scipy. A model kind registered by a plug-in may
use pickles: load only models you trust.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from intentbridge.errors import ModelError
from intentbridge.types import FALLBACK_INTENT, IntentScore, Interpretation
from intentbridge.understanding.calibration import Calibration, FloatArray
from intentbridge.understanding.entities import EntityRecognizer
from intentbridge.understanding.extractors.base import RuleExtractors
from intentbridge.understanding.intent import IntentModel
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
    ) -> NluModel:
        """Train a model of the named pipeline on ``data`` (see :mod:`.training`).

        ``intent_params`` overrides constructor parameters per intent model kind
        (e.g. ``{"sparse": {"C": 0.5}}``); ``crf_params`` those of the CRF tagger;
        ``tagger_params`` those of the accurate pipeline's transformer tagger
        (:class:`~.dense_tagger.DenseTokenTagger`, plus ``crf_weight``).
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
        )

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

    def knows_anything_in(self, text: str) -> bool:
        """Whether the intent models saw any of ``text``'s words or n-grams in training.

        Models that can tell (the TF-IDF one, in both pipelines) decide; a message
        with nothing they know ("", "   ", a row of symbols never seen) gets the
        fallback whatever the threshold, since any intent would be a guess from the
        class priors. Models that cannot tell abstain.
        """
        answers = [
            knows(text)
            for model in self.intent_models
            if (knows := getattr(model, "knows", None)) is not None
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
            "intents": [str(c) for c in self.classes],
            "calibration": {
                "weights": list(self.calibration.weights),
                "temperature": self.calibration.temperature,
                "threshold": self.calibration.threshold,
            },
            "has_tagger": self.entities.tagger is not None,
            "has_dense_tagger": neural is not None,
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
                if (sub / ConstantIntent.FILE).is_file():
                    models.append(ConstantIntent.load(sub))
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
            neural = (
                dense_tagger_class().load(root / _DENSE_TAGGER_DIR)
                if meta.get("has_dense_tagger")
                else None
            )
            entities = EntityRecognizer.from_config(rules, tagger, rules_doc, neural)
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
    {
        "format_version",
        "pipeline",
        "intent_models",
        "intents",
        "calibration",
        "has_tagger",
        "has_dense_tagger",
    }
)
_DENSE_TAGGER_DIR = "dense_tagger"


def column_map(model_classes: Any, classes: Any) -> list[int]:
    index = {str(c): i for i, c in enumerate(classes)}
    return [index[str(c)] for c in model_classes]


class ConstantIntent:
    """The intent "model" of single-intent data: always that intent."""

    FILE = "constant_intent.json"

    def __init__(self, intent: str) -> None:
        self.classes_ = np.array([intent], dtype=object)

    def fit(self, texts: list[str], labels: list[str]) -> ConstantIntent:
        return self

    def predict_proba(self, texts: list[str]) -> FloatArray:
        return np.ones((len(texts), 1))

    def save(self, directory: Path) -> None:
        (directory / self.FILE).write_text(
            json.dumps({"intent": str(self.classes_[0])}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> ConstantIntent:
        return cls(json.loads((directory / cls.FILE).read_text(encoding="utf-8"))["intent"])
