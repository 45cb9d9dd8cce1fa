"""The fallback threshold: what it is chosen from, and the cases that used to go wrong."""

from __future__ import annotations

import numpy as np

from intentbridge.understanding import NluModel, TrainingData, TrainingExample
from intentbridge.understanding.calibration import choose_threshold


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


def test_two_intents_have_no_stand_ins() -> None:
    probs, gold = _sure_model(classes=2)
    assert choose_threshold(probs, gold, unseen_weight=0.03) == choose_threshold(probs, gold)
