"""Sure answers skip the expensive models: the first intent model alone, the CRF alone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from intentbridge.understanding import NluModel, TrainingData
from intentbridge.understanding.calibration import (
    Calibration,
    apply_temperature,
    choose_first_sure,
)
from intentbridge.understanding.pipeline import register_intent_model, register_pipeline
from intentbridge.understanding.tokenizer import Token

from .conftest import TODAY
from .test_model import _KeywordIntent


class _CountingIntent(_KeywordIntent):
    """The toy second model, remembering every text it was asked about."""

    asked: ClassVar[list[str]] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        type(self).asked.extend(texts)
        return super().predict_proba(texts)


@pytest.fixture(scope="module")
def two_models(bank_data: TrainingData) -> NluModel:
    register_intent_model("counting", lambda: _CountingIntent)
    register_pipeline("test-cascade", ["sparse", "counting"])
    return NluModel.train(bank_data, pipeline="test-cascade", today=lambda: TODAY)


TEXTS = [
    "what is my balance",
    "block my card please",
    "send 50 euros to my savings account",
    "hello",
    "purple elephants dance",
]


def test_a_sure_first_model_answers_alone(
    two_models: NluModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = two_models.intent_models[0].predict_proba(TEXTS)
    first = raw.max(axis=1)
    cut = float(np.median(first))  # some messages are sure, some are not
    cascade = dataclasses.replace(two_models.calibration, first_sure=cut)
    monkeypatch.setattr(two_models, "calibration", cascade)
    _CountingIntent.asked.clear()
    batch = two_models.parse_batch(TEXTS)
    unsure = [t for t, c in zip(TEXTS, first, strict=True) if c < cut]
    assert _CountingIntent.asked == unsure
    assert 0 < len(unsure) < len(TEXTS)
    for one, many in zip([two_models.parse(t) for t in TEXTS], batch, strict=True):
        assert (one.intent, one.entities) == (many.intent, many.entities)
        assert one.confidence == pytest.approx(many.confidence)
    # a sure message's confidence: the first model's, at its own temperature
    alone = apply_temperature(raw, cascade.first_temperature).max(axis=1)
    for conf, own, parsed in zip(first, alone, batch, strict=True):
        if conf >= cut:
            assert parsed.confidence == pytest.approx(own)


def test_without_first_sure_every_model_is_asked(
    two_models: NluModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        two_models, "calibration", dataclasses.replace(two_models.calibration, first_sure=None)
    )
    _CountingIntent.asked.clear()
    two_models.parse_batch(TEXTS)
    assert _CountingIntent.asked == TEXTS


def test_first_sure_is_saved_and_old_models_ask_every_model(
    two_models: NluModel, tmp_path: Path
) -> None:
    saved = two_models.save(tmp_path / "m")
    assert NluModel.load(saved).calibration == two_models.calibration
    meta_path = saved / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["calibration"]["first_sure"], meta["calibration"]["first_temperature"]
    meta_path.write_text(json.dumps(meta))
    assert NluModel.load(saved).calibration.first_sure is None


def _held_out(n: int = 1000, classes: int = 4) -> tuple[list[np.ndarray], np.ndarray]:
    """Two models' held-out probabilities: the first sure (0.99) of 70 % and right there."""
    rng = np.random.default_rng(3)
    gold = rng.integers(0, classes, n)
    first = np.full((n, classes), 0.4 / (classes - 1))
    first[np.arange(n), gold] = 0.6
    sure = rng.random(n) < 0.7
    first[sure] = 0.01 / (classes - 1)
    first[np.flatnonzero(sure), gold[sure]] = 0.99
    second = np.full((n, classes), 0.1 / (classes - 1))
    second[np.arange(n), gold] = 0.9
    return [first, second], gold


def test_the_first_model_may_answer_alone_where_it_changes_nothing() -> None:
    probs, gold = _held_out()
    calibration = Calibration(weights=(0.5, 0.5))
    sure, first_t = choose_first_sure(probs, gold, calibration)
    # every cut passes (only the sure rows reach any, all right): the second-lowest,
    # one step of margin for what a held-out split can miss
    assert sure == 0.95
    assert first_t > 0


def test_a_first_model_sure_and_wrong_keeps_the_others_asked() -> None:
    probs, gold = _held_out()
    first = probs[0]
    # on 1 % of its sure messages the first model is wrong; the combination is right
    wrong = np.flatnonzero(first.max(axis=1) >= 0.99)[:10]
    first[wrong] = np.roll(first[wrong], 1, axis=1)
    probs[1][wrong] = 0.0
    probs[1][wrong, gold[wrong]] = 1.0
    calibration = Calibration(weights=(0.3, 0.7))
    assert (calibration.apply(probs).argmax(axis=1) == gold).all()
    sure, _ = choose_first_sure(probs, gold, calibration)
    assert sure is None or sure > first.max()  # none of its messages skips the others


class _CountingTagger:
    """A neural tagger that answers "O" everywhere and counts its calls."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels_ = list(labels)
        self.calls = 0

    def predict_proba(
        self, text: str, tokens: Sequence[Token], intent: str | None = None
    ) -> np.ndarray:
        self.calls += 1
        out = np.full((len(tokens), len(self.labels_)), 0.01, dtype=np.float32)
        out[:, 0] = 1.0
        return out / out.sum(axis=1, keepdims=True)

    def save(self, directory: Path) -> None:
        raise NotImplementedError


def test_a_sure_crf_is_not_mixed_with_the_neural_tagger(bank_model: NluModel) -> None:
    entities = bank_model.entities
    assert entities.tagger is not None
    text = "send 50 euros from checking to savings"

    def found() -> list[tuple[object, ...]]:
        return [(e.entity, e.value, e.start, e.end, e.role) for e in entities.extract(text)]

    alone = found()
    assert len(alone) == 3
    counting = _CountingTagger(["O", *sorted(set(entities.tagger.labels) - {"O"})])
    try:
        entities.set_neural(counting, 0.5, crf_sure=0.0)  # always sure
        assert found() == alone
        assert counting.calls == 0
        entities.set_neural(counting, 0.5, crf_sure=None)  # never
        found()
        assert counting.calls == 1
        assert entities.config()["crf_sure"] is None
    finally:
        entities.set_neural(None)


def test_nlu_train_says_where_the_first_model_answers_alone(
    two_models: NluModel, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from intentbridge.cli.nlu import app

    from .conftest import DATA

    out = tmp_path / "m"
    result = CliRunner().invoke(
        app, ["train", str(DATA / "bank.yml"), "--pipeline", "test-cascade", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    sure = NluModel.load(out).calibration.first_sure
    assert sure is not None
    assert f"the sparse model alone at {sure:g} and above" in " ".join(result.stdout.split())
