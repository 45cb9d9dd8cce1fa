"""Metric definitions, pinned with hand-made cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from intentbridge.types import Entity, IntentScore, Interpretation
from intentbridge.understanding.calibration import (
    apply_temperature,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
)
from intentbridge.understanding.data import EntitySpan, TrainingExample
from intentbridge.understanding.evaluation import evaluate, evaluate_detailed, score
from intentbridge.understanding.report import write_report


def ex(
    text: str, intent: str, *spans: tuple[int, int, str] | tuple[int, int, str, str]
) -> TrainingExample:
    return TrainingExample(
        text,
        intent,
        tuple(
            EntitySpan(s[0], s[1], s[2], text[s[0] : s[1]], role=s[3] if len(s) > 3 else None)
            for s in spans
        ),  # type: ignore[misc]
    )


def interp(
    text: str,
    intent: str,
    confidence: float = 0.9,
    entities: Sequence[Entity] = (),
    top: str | None = None,
) -> Interpretation:
    return Interpretation(
        text=text,
        intent=intent,
        confidence=confidence,
        entities=tuple(entities),
        ranking=(IntentScore(top or intent, confidence),),
    )


def ent(start: int, end: int, name: str, role: str | None = None) -> Entity:
    return Entity(name, "v", start, end, "t", role=role)


def test_intent_accuracy_counts_fallback_on_in_scope_as_wrong() -> None:
    golds = [ex("a", "x"), ex("b", "x"), ex("c", "y"), ex("d", "y")]
    preds = [
        interp("a", "x"),
        interp("b", "nlu_fallback", top="x"),
        interp("c", "y"),
        interp("d", "x"),
    ]
    m = score(golds, preds)
    assert m["intent_accuracy"] == 0.5
    assert m["n"] == 4
    # x: precision 1/2 (a right, d wrong), recall 1/2; y: precision 1/1, recall 1/2
    assert m["per_intent"]["x"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_intent"]["y"]["precision"] == 1.0
    assert m["per_intent"]["y"]["f1"] == pytest.approx(2 / 3)
    assert m["intent_macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert "oos_recall" not in m


def test_oos_metrics() -> None:
    golds = [ex("a", "x"), ex("b", "x"), ex("c", "oos"), ex("d", "oos"), ex("e", "oos")]
    preds = [
        interp("a", "x"),
        interp("b", "nlu_fallback", top="x"),  # in-scope rejected: wrong for in-scope accuracy
        interp("c", "oos"),
        interp("d", "nlu_fallback", top="x"),  # fallback on oos counts as out-of-scope
        interp("e", "x"),
    ]
    m = score(golds, preds)
    assert m["in_scope_accuracy"] == 0.5
    assert m["oos_recall"] == pytest.approx(2 / 3)
    assert m["oos_precision"] == pytest.approx(2 / 3)  # b, c, d predicted out-of-scope; c, d are
    assert m["intent_accuracy"] == pytest.approx(3 / 5)


def test_entity_metrics_are_micro_exact_span_and_label() -> None:
    golds = [
        ex("send 5 euros to bob", "pay", (5, 12, "amount"), (16, 19, "payee")),
        ex("pay ann", "pay", (4, 7, "payee")),
    ]
    preds = [
        interp("", "pay", entities=[ent(5, 12, "amount"), ent(16, 19, "account")]),  # label wrong
        interp("", "pay", entities=[ent(4, 7, "payee"), ent(0, 3, "payee")]),  # one extra
    ]
    m = score(golds, preds, learned_entities={"account"})
    assert m["entity_precision"] == pytest.approx(2 / 4)
    assert m["entity_recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["frame_accuracy"] == 0.0


def test_frame_accuracy_needs_intent_and_the_exact_entity_set() -> None:
    golds = [
        ex("5 euros", "pay", (0, 7, "amount")),
        ex("5 euros", "pay", (0, 7, "amount")),
        ex("hi", "greet"),
    ]
    preds = [
        interp("", "pay", entities=[ent(0, 7, "amount")]),
        interp("", "greet", entities=[ent(0, 7, "amount")]),  # entities right, intent wrong
        interp("", "greet"),
    ]
    assert score(golds, preds)["frame_accuracy"] == pytest.approx(2 / 3)


def test_roles_count_only_when_gold_has_roles() -> None:
    no_roles = [ex("from a", "t", (5, 6, "account"))]
    with_roles = [ex("from a", "t", (5, 6, "account", "from"))]
    pred = [interp("", "t", entities=[ent(5, 6, "account", role="to")])]
    assert score(no_roles, pred)["entity_f1"] == 1.0
    assert score(with_roles, pred)["entity_f1"] == 0.0


def test_unannotated_builtin_types_are_not_scored() -> None:
    golds = [ex("send 5", "pay")]
    preds = [interp("", "pay", entities=[ent(5, 6, "number")])]
    assert score(golds, preds)["frame_accuracy"] == 1.0
    # ...unless the model learned that type
    assert score(golds, preds, learned_entities={"number"})["frame_accuracy"] == 0.0


def test_expected_calibration_error() -> None:
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.3, 0.3])
    right = np.array([True, True, True, False, False, False])
    # bin (0.8, 0.9]: 4 items, accuracy 0.75, gap 0.15; bin (0.2, 0.3]: 2 items, gap 0.3
    assert expected_calibration_error(conf, right) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.3)
    assert expected_calibration_error(np.array([]), np.array([], dtype=bool)) == 0.0


def test_temperature_and_threshold() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 300)
    # overconfident model: right 70% of the time with probability ~0.98
    pred = np.where(rng.random(300) < 0.7, gold, (gold + 1) % 3)
    probs = np.full((300, 3), 0.01)
    probs[np.arange(300), pred] = 0.98
    t = fit_temperature(probs, gold)
    assert t > 1.0  # flattens
    calibrated = apply_temperature(probs, t)
    assert calibrated.max(axis=1).mean() == pytest.approx(0.7, abs=0.05)
    # all confidences equal: rejecting everything would lose the 70% that are right
    assert choose_threshold(calibrated, gold) == 0.0


class _FakeModel:
    info: ClassVar[dict[str, Any]] = {"entity_labels": []}

    def parse(self, text: str) -> Interpretation:
        return interp(text, "x" if "x" in text else "y", 0.8)

    def parse_batch(self, texts: Sequence[str]) -> list[Interpretation]:
        return [self.parse(t) for t in texts]


def test_evaluate_measures_latency() -> None:
    m = evaluate(_FakeModel(), [ex("x", "x"), ex("y", "x")], latency_sample=10)
    assert m["intent_accuracy"] == 0.5
    assert set(m["latency_ms"]) == {"p50", "p95"}
    assert m["latency_ms"]["p50"] >= 0


def test_report_files(tmp_path: Path) -> None:
    golds = [ex("x1", "x"), ex("x2", "y"), ex("x3", "y"), ex("y1", "y")]
    result = evaluate_detailed(_FakeModel(), golds, latency_sample=5)
    write_report(result, tmp_path / "r", title="fake")
    assert (tmp_path / "r" / "confusion.png").stat().st_size > 1000
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "intent accuracy" in summary.lower()
    confusions = (tmp_path / "r" / "confusions.md").read_text()
    assert "| y | x | 2 |" in confusions
    assert "x2" in confusions  # example messages are listed


def test_in_scope_accuracy_is_none_without_in_scope_examples() -> None:
    """Only oos in gold: nothing to score in scope, which is not the same as 0 % right."""
    golds = [ex("a", "oos"), ex("b", "oos")]
    m = score(golds, [interp("a", "oos"), interp("b", "x")])
    assert m["in_scope_accuracy"] is None
    assert m["oos_recall"] == 0.5


def test_report_on_only_oos_and_on_no_examples(tmp_path: Path) -> None:
    """The summary says n/a for a metric with nothing to score; an empty matrix is drawn."""
    oos_only = evaluate_detailed(_FakeModel(), [ex("a", "oos")], latency_sample=5)
    write_report(oos_only, tmp_path / "oos", title="oos only")
    assert "| In-scope accuracy | n/a |" in (tmp_path / "oos" / "summary.md").read_text()
    empty = evaluate_detailed(_FakeModel(), [], latency_sample=5)
    write_report(empty, tmp_path / "empty", title="nothing")
    assert (tmp_path / "empty" / "confusion.png").stat().st_size > 0
