"""Accurate training on data without entities fits the dense model's held-out copy in a
second process while this one fits the final models: the same model, sooner.

Needs the ``embeddings`` extra and the MiniLM weights; without them it skips.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="the 'embeddings' extra (torch) is not installed")
pytest.importorskip("transformers", reason="the 'embeddings' extra is not installed")

from intentbridge.understanding import NluModel, TrainingData
from intentbridge.understanding import training as training_module
from intentbridge.understanding.data import TrainingExample

INTENTS = {
    "balance": ["what is my balance", "how much money do i have", "show my balance"],
    "transfer": ["send money to bob", "move cash to savings", "transfer funds to alice"],
    "cards": ["block my card", "my card was stolen", "freeze the debit card"],
}
PARAMS = {"dense": {"method": "frozen"}}  # deterministic, and seconds, not minutes


def _data() -> TrainingData:
    examples = [
        TrainingExample(text=f"{text} {suffix}", intent=intent)
        for intent, texts in INTENTS.items()
        for text in texts
        for suffix in ("", "please", "now", "today", "thanks", "quickly", "asap", "ok")
    ]
    return TrainingData(examples=examples)


@pytest.mark.slow
def test_the_held_out_fit_in_a_second_process_gives_the_model_fitting_in_turn_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one held-out split (as on large data) for these 72 examples
    monkeypatch.setattr(training_module, "_SMALL_DATA", 50)
    # the same torch thread count for both runs (the split one always uses 1)
    monkeypatch.setenv("INTENTBRIDGE_TORCH_THREADS", "1")
    here: list[Any] = []
    run = training_module._HeldOutJob.run

    def counted(job: Any) -> Any:  # what runs in this process; the child has its own
        here.append(job)
        return run(job)

    monkeypatch.setattr(training_module._HeldOutJob, "run", counted)
    apart = NluModel.train(_data(), "accurate", intent_params=PARAMS)
    assert here == [], "the held-out fit ran here, not in the second process"

    monkeypatch.setattr(training_module._HeldOut, "start", classmethod(lambda cls, job: None))
    in_turn = NluModel.train(_data(), "accurate", intent_params=PARAMS)
    # the same fits; embeddings batched with other texts differ in their last bits
    assert apart.calibration.weights == pytest.approx(in_turn.calibration.weights, abs=1e-4)
    assert apart.calibration.temperature == pytest.approx(in_turn.calibration.temperature, 1e-4)
    assert apart.calibration.threshold == pytest.approx(in_turn.calibration.threshold, abs=1e-4)
    probes = ["what's my balance", "send 5 euros to bob", "lost card", "tell me a joke"]
    for text in probes:
        a, b = apart.parse(text), in_turn.parse(text)
        assert a.intent == b.intent
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


@pytest.mark.slow
def test_a_child_that_fails_is_replaced_by_the_fit_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A child that cannot run the job (killed, or a kind only this process knows)
    costs time, never the training."""
    monkeypatch.setattr(training_module, "_SMALL_DATA", 50)
    jobs: list[Any] = []
    start = training_module._HeldOut.start.__func__  # type: ignore[attr-defined]

    def broken(cls: Any, job: Any) -> Any:
        jobs.append(job)
        bad = training_module._HeldOutJob(["no-such-kind"], {}, [], [], [], [])
        started = start(cls, bad)
        return (
            None if started is None else training_module._HeldOut(job, started.pool, started.future)
        )

    monkeypatch.setattr(training_module._HeldOut, "start", classmethod(broken))
    model = NluModel.train(_data(), "accurate", intent_params=PARAMS)
    assert jobs, "the second process was not asked"
    assert model.parse("what is my balance now").intent == "balance"
    assert np.isfinite(model.calibration.temperature)


ENTITY_TEMPLATES = {
    "transfer": ["send {n} euros to {who}", "transfer {n} to {who} please", "pay {who} {n}"],
    "balance": ["what is the balance of my {acc} account", "how much is in {acc}"],
}
PEOPLE = ["bob", "alice", "carol", "dave"]
ACCOUNTS = ["savings", "checking", "joint"]


def _entity_data() -> TrainingData:
    from intentbridge.understanding.annotation import parse_annotated

    examples = []
    for i in range(48):
        n, who, acc = 5 * (i + 1), PEOPLE[i % len(PEOPLE)], ACCOUNTS[i % len(ACCOUNTS)]
        for intent, templates in ENTITY_TEMPLATES.items():
            template = templates[i % len(templates)]
            annotated = template.format(
                n=f"[{n}](amount)", who=f"[{who}](person)", acc=f"[{acc}](account)"
            )
            text, spans = parse_annotated(annotated)
            examples.append(TrainingExample(text=text, intent=intent, entities=tuple(spans)))
    return TrainingData(examples=examples)


TAGGER = {"epochs": 1.0}


def _count_taggers_trained_here(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The transformer taggers trained in this process from now on (a spawned child
    has the real function: the patch does not reach it)."""
    here: list[Any] = []
    train_here = training_module.train_dense_tagger

    def counted(*args: Any, **kwargs: Any) -> Any:
        here.append(args)
        return train_here(*args, **kwargs)

    monkeypatch.setattr(training_module, "train_dense_tagger", counted)
    return here


@pytest.mark.slow
def test_the_transformer_tagger_trains_in_a_process_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On large data (here: made large) the tagger trains beside the CRF and the
    intent models, not after them in this process."""
    monkeypatch.setattr(training_module, "_PARALLEL_MIN_EXAMPLES", 50)
    here = _count_taggers_trained_here(monkeypatch)
    model = NluModel.train(_entity_data(), "accurate", intent_params=PARAMS, tagger_params=TAGGER)
    assert here == [], "the tagger trained here, not in a child process"
    assert model.entities.neural is not None
    assert model.entities.tagger is not None
    parsed = model.parse("send 40 euros to carol")
    assert parsed.intent == "transfer"
    assert {(e.entity, e.text) for e in parsed.entities} >= {("person", "carol")}


@pytest.mark.slow
def test_a_tagger_child_that_fails_is_replaced_by_the_tagger_trained_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(training_module, "_PARALLEL_MIN_EXAMPLES", 50)
    start = training_module._in_second_process
    asked: list[Any] = []

    def broken(fn: Any, *args: Any) -> Any:
        if fn is training_module._train_tagger_in_child:
            data, job, tagger_dir = args
            asked.append(job)
            # a parameter the tagger refuses: the child raises at once
            job = replace(job, params={**job.params, "no_such_parameter": 1})
            args = (data, job, tagger_dir)
        return start(fn, *args)

    monkeypatch.setattr(training_module, "_in_second_process", broken)
    model = NluModel.train(_entity_data(), "accurate", intent_params=PARAMS, tagger_params=TAGGER)
    assert asked, "no tagger child was started"
    assert model.entities.neural is not None
    assert model.parse("how much is in savings").intent == "balance"


@pytest.mark.slow
def test_on_the_largest_data_the_tagger_trains_after_the_crf_in_its_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where every part is bound by the time budget, a third process would only split
    two cores three ways: the CRF's child trains the tagger after the CRF."""
    monkeypatch.setattr(training_module, "_PARALLEL_MIN_EXAMPLES", 50)
    monkeypatch.setattr(training_module, "_TAGGER_BESIDE_MAX_EXAMPLES", 60)
    started: list[Any] = []
    start = training_module._in_second_process

    def spy(fn: Any, *args: Any) -> Any:
        started.append(fn)
        return start(fn, *args)

    monkeypatch.setattr(training_module, "_in_second_process", spy)
    here = _count_taggers_trained_here(monkeypatch)
    model = NluModel.train(_entity_data(), "accurate", intent_params=PARAMS, tagger_params=TAGGER)
    assert started == [training_module._train_entities_in_child]
    assert here == [], "the tagger trained here, not after the CRF in its child"
    assert model.entities.neural is not None


@pytest.mark.slow
def test_a_failed_intent_fit_ends_the_entity_children_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The children would train on for minutes; the error comes now, and they end."""
    import multiprocessing
    import time

    monkeypatch.setattr(training_module, "_PARALLEL_MIN_EXAMPLES", 50)
    long_tagger = {"epochs": 300.0, "time_budget_s": 300.0}
    bad_intents = {**PARAMS, "dense": {"method": "frozen", "no_such_parameter": 1}}
    started = time.perf_counter()
    with pytest.raises(ValueError, match="no_such_parameter"):
        NluModel.train(
            _entity_data(), "accurate", intent_params=bad_intents, tagger_params=long_tagger
        )
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []
    assert time.perf_counter() - started < 60
