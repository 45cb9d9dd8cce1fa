"""Evaluating an NLU model on annotated examples.

:func:`evaluate` returns a plain dict (JSON-ready). The definitions, pinned by tests:

- ``intent_accuracy``: predicted intent equals gold. ``nlu_fallback`` for an in-scope
  message is wrong; for a gold ``oos`` message, ``oos`` and ``nlu_fallback`` are right.
- ``intent_macro_f1``: F1 per gold intent (same counting), averaged unweighted.
- ``entity_precision``/``recall``/``f1``: micro, exact span and label. The label is the
  entity name, plus the role when the gold data annotates any role. Predicted entity
  types that are neither annotated in the gold data nor learned by the model (e.g.
  built-in ``number`` on a data set without entities) are not scored.
- ``frame_accuracy``: intent right and the scored predicted entities equal the gold set.
- ``in_scope_accuracy``, ``oos_recall``, ``oos_precision``: only when gold has ``oos``;
  a prediction is out-of-scope when it is ``oos`` or ``nlu_fallback``.
  ``in_scope_accuracy`` is None when every gold example is ``oos`` (nothing to score).
- ``expected_calibration_error``: 10 equal-width bins over the top intent's confidence
  against whether the top intent (before the fallback threshold) is right.
- ``latency_ms``: p50/p95 of single-message ``parse`` calls on up to 500 messages.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from intentbridge.types import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, Interpretation
from intentbridge.understanding.calibration import expected_calibration_error
from intentbridge.understanding.data import TrainingExample

_OOS_PREDICTIONS = frozenset({OUT_OF_SCOPE_INTENT, FALLBACK_INTENT})


class Parser(Protocol):
    """What evaluation needs from a model (an :class:`NluModel` fits)."""

    info: dict[str, Any]

    def parse(self, text: str) -> Interpretation:
        """Interpret one message."""
        ...

    def parse_batch(self, texts: Sequence[str]) -> list[Interpretation]:
        """Interpret many messages."""
        ...


@dataclass(slots=True)
class EvaluationResult:
    """The metrics plus what a report needs: gold and predicted intents per example."""

    metrics: dict[str, Any]
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    examples: list[TrainingExample] = field(default_factory=list)
    interpretations: list[Interpretation] = field(default_factory=list)


def evaluate(
    model: Parser, examples: Sequence[TrainingExample], *, latency_sample: int = 500, seed: int = 0
) -> dict[str, Any]:
    """Metrics for ``model`` on ``examples`` (see the module docstring)."""
    return evaluate_detailed(model, examples, latency_sample=latency_sample, seed=seed).metrics


def evaluate_detailed(
    model: Parser, examples: Sequence[TrainingExample], *, latency_sample: int = 500, seed: int = 0
) -> EvaluationResult:
    """Like :func:`evaluate`, also returning per-example predictions for reports."""
    examples = list(examples)
    interps = model.parse_batch([ex.text for ex in examples])
    metrics = score(examples, interps, learned_entities=_learned(model))
    metrics["latency_ms"] = measure_latency(
        model, [ex.text for ex in examples], latency_sample, seed
    )
    gold = [ex.intent for ex in examples]
    predicted = [_normalise_prediction(g, p.intent) for g, p in zip(gold, interps, strict=True)]
    return EvaluationResult(metrics, gold, predicted, examples, interps)


def _learned(model: Parser) -> set[str]:
    labels = getattr(model, "info", {}).get("entity_labels", [])
    return {str(label).partition("#")[0] for label in labels}


def _normalise_prediction(gold: str, predicted: str) -> str:
    # a fallback on an out-of-scope message is the right answer, spelled differently
    if gold == OUT_OF_SCOPE_INTENT and predicted in _OOS_PREDICTIONS:
        return OUT_OF_SCOPE_INTENT
    return predicted


def score(
    examples: Sequence[TrainingExample],
    interpretations: Sequence[Interpretation],
    *,
    learned_entities: set[str] | None = None,
) -> dict[str, Any]:
    """All metrics except latency, from gold examples and interpretations."""
    if len(examples) != len(interpretations):
        raise ValueError("examples and interpretations differ in length")
    n = len(examples)
    gold = [ex.intent for ex in examples]
    pred = [_normalise_prediction(g, p.intent) for g, p in zip(gold, interpretations, strict=True)]
    correct = [g == p for g, p in zip(gold, pred, strict=True)]
    metrics: dict[str, Any] = {"n": n}
    metrics["intent_accuracy"] = _mean(correct)
    per_intent = _per_intent(gold, pred)
    metrics["intent_macro_f1"] = _mean([v["f1"] for v in per_intent.values()])

    with_roles = any(sp.role for ex in examples for sp in ex.entities)
    scored_types = {sp.entity for ex in examples for sp in ex.entities} | (
        learned_entities or set()
    )
    tp = fp = fn = 0
    frames = 0
    for ex, interp, ok in zip(examples, interpretations, correct, strict=True):
        gold_set = {
            (sp.start, sp.end, _label(sp.entity, sp.role, with_roles)) for sp in ex.entities
        }
        pred_set = {
            (e.start, e.end, _label(e.entity, e.role, with_roles))
            for e in interp.entities
            if e.entity in scored_types
        }
        tp += len(gold_set & pred_set)
        fp += len(pred_set - gold_set)
        fn += len(gold_set - pred_set)
        frames += ok and gold_set == pred_set
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    metrics["entity_precision"] = precision
    metrics["entity_recall"] = recall
    metrics["entity_f1"] = _f1(precision, recall)
    metrics["frame_accuracy"] = frames / n if n else 0.0

    if OUT_OF_SCOPE_INTENT in gold:
        inscope = [i for i, g in enumerate(gold) if g != OUT_OF_SCOPE_INTENT]
        oos = [i for i, g in enumerate(gold) if g == OUT_OF_SCOPE_INTENT]
        predicted_oos = [i for i, p in enumerate(interpretations) if p.intent in _OOS_PREDICTIONS]
        metrics["in_scope_accuracy"] = _mean([correct[i] for i in inscope]) if inscope else None
        metrics["oos_recall"] = _mean([interpretations[i].intent in _OOS_PREDICTIONS for i in oos])
        metrics["oos_precision"] = _mean([gold[i] == OUT_OF_SCOPE_INTENT for i in predicted_oos])

    conf = np.array([p.confidence for p in interpretations], dtype=np.float64)
    top_right = np.array(
        [
            bool(p.ranking) and p.ranking[0].name == g
            for g, p in zip(gold, interpretations, strict=True)
        ],
        dtype=bool,
    )
    metrics["expected_calibration_error"] = expected_calibration_error(conf, top_right)
    metrics["per_intent"] = per_intent
    metrics["confusions"] = [
        {"gold": g, "predicted": p, "count": c}
        for (g, p), c in Counter(
            (g, p) for g, p in zip(gold, pred, strict=True) if g != p
        ).most_common(50)
    ]
    return metrics


def _label(entity: str, role: str | None, with_roles: bool) -> str:
    return f"{entity}#{role}" if with_roles and role else entity


def _mean(values: Sequence[bool] | Sequence[float]) -> float:
    return float(sum(values)) / len(values) if values else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _per_intent(gold: Sequence[str], pred: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    gold_count = Counter(gold)
    pred_count = Counter(pred)
    hits = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    for intent in sorted(gold_count):
        precision = hits[intent] / pred_count[intent] if pred_count[intent] else 0.0
        recall = hits[intent] / gold_count[intent]
        out[intent] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": gold_count[intent],
        }
    return out


def measure_latency(
    model: Parser, texts: Sequence[str], sample: int = 500, seed: int = 0
) -> dict[str, float]:
    """p50/p95 milliseconds of single-message ``parse`` over a sample of ``texts``."""
    if not texts:
        return {"p50": 0.0, "p95": 0.0}
    chosen = list(texts)
    random.Random(seed).shuffle(chosen)  # noqa: S311 - sampling, not security
    chosen = chosen[:sample]
    model.parse(chosen[0])  # the first call may warm caches; it is not a user's latency
    times = []
    for text in chosen:
        start = time.perf_counter()
        model.parse(text)
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.array(times)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95))}
