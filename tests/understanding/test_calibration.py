"""The fallback threshold: what it is chosen from, and the cases that used to go wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from intentbridge.cli.main import app
from intentbridge.understanding import NluModel, TrainingData, TrainingExample
from intentbridge.understanding.calibration import choose_threshold
from intentbridge.understanding.data import save_training_data


def _sure_model(n: int = 400, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Held-out predictions of a model right and sure of every message (0.9 on its intent)."""
    rng = np.random.default_rng(0)
    gold = rng.integers(0, classes, n)
    probs = np.full((n, classes), 0.1 / (classes - 1))
    probs[np.arange(n), gold] = 0.9
    return probs, gold


def test_nothing_right_on_held_out_data_means_no_threshold() -> None:
    probs, gold = _sure_model()
    wrong = (gold + 1) % probs.shape[1]
    assert choose_threshold(probs, wrong) == 0.0


def test_one_example_per_intent_still_answers() -> None:
    """Out-of-fold, every message's intent is missing from training: no evidence, no fallback."""
    texts = {"hi": "greet", "bye": "goodbye", "thanks": "thank"}
    model = NluModel.train(TrainingData(examples=[TrainingExample(t, i) for t, i in texts.items()]))
    assert model.calibration.threshold == 0.0
    assert model.parse("hi").intent == "greet"


def test_unseen_intents_stand_in_for_out_of_scope_messages() -> None:
    probs, gold = _sure_model()
    # every held-out answer is right and sure: the utility alone has no reason to reject
    assert choose_threshold(probs, gold) == 0.0
    # with the bot's own intents as stand-ins, a message whose intent is unknown has a
    # top confidence of 1/8 after renormalising; the threshold moves above it, and
    # still below the 0.9 of every right answer
    threshold = choose_threshold(probs, gold, unseen_weight=0.03)
    assert 0.125 < threshold < 0.9


def test_out_of_scope_recall_is_not_bought_with_many_right_answers() -> None:
    """With `oos` examples, the threshold rejects at most 1 in 200 right answers."""
    rng = np.random.default_rng(1)
    classes, oos = 6, 5
    n_right, n_unsure, n_oos = 980, 20, 15
    gold = np.concatenate([rng.integers(0, oos, n_right + n_unsure), np.full(n_oos, oos)])
    conf = np.concatenate(
        [np.full(n_right, 0.95), rng.uniform(0.40, 0.46, n_unsure), rng.uniform(0.3, 0.38, n_oos)]
    )
    # every in-scope message right (some unsure); every out-of-scope one taken for intent 0
    top = np.concatenate([gold[: n_right + n_unsure], np.zeros(n_oos, dtype=np.int64)])
    probs = np.tile(((1.0 - conf) / (classes - 1))[:, None], (1, classes))
    probs[np.arange(len(gold)), top] = conf
    rejected = lambda t: float((conf[: n_right + n_unsure] < t).mean())  # noqa: E731
    # the utility alone buys all 15 out-of-scope messages with the 20 unsure right answers
    uncapped = choose_threshold(probs, gold, oos_index=oos, max_right_rejected=1.0)
    assert rejected(uncapped) == 0.02
    capped = choose_threshold(probs, gold, oos_index=oos)
    assert rejected(capped) <= 0.005
    assert capped > 0.38  # above every out-of-scope confidence: all are still rejected


def test_two_intents_have_no_stand_ins() -> None:
    probs, gold = _sure_model(classes=2)
    assert choose_threshold(probs, gold, unseen_weight=0.03) == choose_threshold(probs, gold)


def _distinct_intents(n_intents: int = 10, per_intent: int = 12) -> TrainingData:
    topics = ["weather", "music", "alarm", "taxi", "pizza", "flight", "news", "bank", "gym", "mail"]
    verbs = ["show", "tell", "give", "find", "check", "get"]
    return TrainingData(
        examples=[
            TrainingExample(f"{verbs[j % len(verbs)]} {topic} {topic} please {j}", topic)
            for topic in topics[:n_intents]
            for j in range(per_intent)
        ]
    )


def test_unseen_weight_raises_the_threshold_of_a_sure_model(tmp_path: Path) -> None:
    data = _distinct_intents()
    plain = NluModel.train(data)
    cautious = NluModel.train(data, unseen_weight=0.05)
    assert cautious.calibration.threshold > plain.calibration.threshold
    assert cautious.parse("check taxi taxi please").intent == "taxi"  # known: still answered
    cautious.save(tmp_path / "m")
    assert NluModel.load(tmp_path / "m").info["unseen_weight"] == 0.05


def test_nlu_train_takes_the_unseen_weight(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    save_training_data(_distinct_intents(), data)
    runs = {
        weight: CliRunner().invoke(
            app,
            ["nlu", "train", str(data), "--out", str(tmp_path / weight), "--unseen-weight", weight],
        )
        for weight in ("0", "0.05")
    }
    assert all(r.exit_code == 0 for r in runs.values()), [r.output for r in runs.values()]
    thresholds = {w: NluModel.load(tmp_path / w).calibration.threshold for w in runs}
    assert thresholds["0.05"] > thresholds["0"]
    refused = CliRunner().invoke(
        app, ["nlu", "train", str(data), "--out", str(tmp_path / "x"), "--unseen-weight", "-1"]
    )
    assert refused.exit_code == 2
