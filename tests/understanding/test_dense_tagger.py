"""The accurate pipeline's transformer token tagger, and its mix with the CRF.

Needs the ``embeddings`` extra and the MiniLM weights; without them it skips.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from intentbridge.understanding.data import EntitySpan, TrainingData, TrainingExample
from intentbridge.understanding.pipeline import get_pipeline
from intentbridge.understanding.tagger import allowed_transitions, bio_labels, constrained_decode
from intentbridge.understanding.tagger_training import Schedule
from intentbridge.understanding.tokenizer import tokenize


def test_constrained_decode_never_starts_an_entity_inside() -> None:
    labels = ["O", "B-city", "I-city", "B-date", "I-date"]
    # token-wise argmax would be O, I-city, I-date: two orphan I- labels
    probs = np.array(
        [[0.9, 0.05, 0.0, 0.05, 0.0], [0.2, 0.35, 0.4, 0.0, 0.05], [0.25, 0.0, 0.0, 0.35, 0.4]]
    )
    names, conf = constrained_decode(probs, labels)
    assert names == ["O", "B-city", "B-date"]
    assert conf == pytest.approx([0.9, 0.35, 0.35])
    allowed = allowed_transitions(labels)
    assert not allowed[len(labels), 2]  # no I- at the start
    assert allowed[1, 2] and allowed[2, 2] and not allowed[3, 2]


def test_schedule_stops_inside_its_budget_and_never_runs_past_the_plan() -> None:
    settings = {"warmup_fraction": 0.1}
    unlimited = Schedule(5, None, settings)
    while not unlimited.done():
        unlimited.tick()
    assert (unlimited.step, unlimited.cut) == (5, False)
    spent = Schedule(1000, 0.0, settings)  # no time at all: one step, then stop
    spent.tick()
    assert spent.done() and spent.cut and spent.step == 1
    assert Schedule(100, None, settings).factor(0) == pytest.approx(0.1)  # warming up


def test_only_the_accurate_pipeline_uses_the_transformer_tagger() -> None:
    assert get_pipeline("fast").entity_tagger == "crf"
    assert get_pipeline("accurate").entity_tagger == "crf+dense"


pytest.importorskip("torch", reason="the 'embeddings' extra (torch) is not installed")
pytest.importorskip("transformers", reason="the 'embeddings' extra is not installed")

from intentbridge.errors import ModelError  # noqa: E402 - after the skips above
from intentbridge.understanding import NluModel  # noqa: E402
from intentbridge.understanding.dense_tagger import DenseTokenTagger, first_pieces  # noqa: E402
from intentbridge.understanding.encoders import find_embeddings_dir  # noqa: E402
from intentbridge.understanding.gazetteer import MIN_EXAMPLES as MIN_GAZETTEER_EXAMPLES  # noqa: E402

try:
    find_embeddings_dir()
except ModelError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"all-MiniLM-L6-v2 is not available: {exc}", allow_module_level=True)

CITIES = ["Boston", "Denver", "New York", "San Francisco", "Dallas", "Atlanta"]
DAYS = ["monday", "friday", "tomorrow"]
FLIGHT = ["show flights from {a} to {b} on {d}", "i want to fly from {a} to {b} {d}"]
FARE = ["how much is a ticket from {a} to {b}"]
# Fixed threads: the automatic count follows the machine's load, and another
# reduction order would change the last bits of the weights.
PARAMS = {"epochs": 12.0, "batch_size": 8, "train_layers": 1, "num_threads": 1}
PARAMS["learning_rate"] = 3e-4
PARAMS["head_learning_rate"] = 3e-3


def _example(template: str, intent: str, a: str, b: str, d: str) -> TrainingExample:
    text = template.format(a=a, b=b, d=d)
    spans = []
    for value, entity in ((a, "from_city"), (b, "to_city"), (d, "date")):
        if "{d}" not in template and entity == "date":
            continue
        start = text.index(value, spans[-1].end if spans else 0)
        spans.append(EntitySpan(start, start + len(value), entity, value))
    return TrainingExample(text, intent, tuple(spans))


def _data() -> TrainingData:
    pairs = [(a, b) for a, b in itertools.permutations(CITIES, 2)][::3]
    examples = [
        _example(t, "flight", a, b, DAYS[i % len(DAYS)])
        for i, (a, b) in enumerate(pairs)
        for t in FLIGHT
    ]
    examples += [_example(FARE[0], "fare", a, b, "") for a, b in pairs]
    return TrainingData(examples=examples)


def _bio(data: TrainingData) -> tuple[list[str], list[list[str]], list[str]]:
    texts = [ex.text for ex in data.examples]
    labels = [
        bio_labels(tokenize(ex.text), [(s.start, s.end, s.label) for s in ex.entities])
        for ex in data.examples
    ]
    return texts, labels, [ex.intent for ex in data.examples]


@pytest.fixture(scope="module")
def tagger() -> DenseTokenTagger:
    texts, labels, intents = _bio(_data())
    return DenseTokenTagger(**PARAMS).fit(texts, [tokenize(t) for t in texts], labels, intents)


def test_first_pieces_align_our_tokens_with_word_pieces(tagger: DenseTokenTagger) -> None:
    text = "Send €1,250.50 to Bob's savings"
    tokens = tokenize(text)
    offsets = tagger._offsets(text)
    pieces = first_pieces(offsets, tokens)
    assert len(pieces) == len(tokens)
    for tok, piece in zip(tokens, pieces, strict=True):
        start, end = offsets[piece]
        assert start == tok.start  # each token's first piece starts where it starts
        assert end <= tok.end
    # a truncated token has no piece
    assert first_pieces([(0, 0), (0, 4), (0, 0)], tokenize("send money")) == [1, -1]


def test_tagger_finds_entities_with_exact_spans(tagger: DenseTokenTagger) -> None:
    text = "show flights from Dallas to New York on friday"
    tokens = tokenize(text)
    probs = tagger.predict_proba(text, tokens)
    assert probs.shape == (len(tokens), len(tagger.labels_))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    names, _ = constrained_decode(probs.astype(np.float64), tagger.labels_)
    assert names == ["O", "O", "O", "B-from_city", "O", "B-to_city", "I-to_city", "O", "B-date"]


def test_save_load_predicts_identically(tagger: DenseTokenTagger, tmp_path: Path) -> None:
    tagger.save(tmp_path / "tagger")
    assert not (tmp_path / "tagger" / "model.safetensors").exists()  # no copy of the base
    loaded = DenseTokenTagger.load(tmp_path / "tagger")
    assert loaded.labels_ == tagger.labels_
    for text in ["i want to fly from Atlanta to Boston monday", "a ticket from Denver to Dallas"]:
        tokens = tokenize(text)
        np.testing.assert_array_equal(
            loaded.predict_proba(text, tokens), tagger.predict_proba(text, tokens)
        )


def test_load_refuses_other_base_weights(tagger: DenseTokenTagger, tmp_path: Path) -> None:
    tagger.save(tmp_path / "tagger")
    meta = tmp_path / "tagger" / "dense_tagger.json"
    meta.write_text(meta.read_text().replace(tagger._require_encoder().sha256, "0" * 64))
    with pytest.raises(ModelError, match="SHA-256"):
        DenseTokenTagger.load(tmp_path / "tagger")


def test_nlu_model_mixes_crf_and_tagger_and_round_trips(
    tagger: DenseTokenTagger, tmp_path: Path
) -> None:
    model = NluModel.train(_data(), "fast")
    model.entities.set_neural(tagger, 0.5)
    text = "i want to fly from San Francisco to Denver tomorrow"
    found = {(e.entity, e.text) for e in model.parse(text).entities}
    assert {("from_city", "San Francisco"), ("to_city", "Denver")} <= found
    for ent in model.parse(text).entities:
        assert text[ent.start : ent.end] == ent.text
    loaded = NluModel.load(model.save(tmp_path / "model"))
    assert loaded.entities.neural is not None
    assert loaded.entities.crf_weight == 0.5
    texts = [text, "how much is a ticket from Boston to Atlanta", "fly to dallas on monday"]
    assert [p.entities for p in loaded.parse_batch(texts)] == [
        p.entities for p in model.parse_batch(texts)
    ]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="unknown"):
        DenseTokenTagger(nonsense=1)
    with pytest.raises(ValueError, match="differ in length"):
        DenseTokenTagger().fit(["a"], [], [])
    with pytest.raises(ModelError, match="not fitted"):
        DenseTokenTagger().predict_proba("a", tokenize("a"))


@pytest.mark.slow
def test_accurate_pipeline_trains_saves_and_loads_the_tagger(tmp_path: Path) -> None:
    """The accurate pipeline trains the tagger after the CRF and NluModel.load finds it."""
    model = NluModel.train(
        _data(),
        "accurate",
        intent_params={"dense": {"method": "frozen"}},
        tagger_params={**PARAMS, "crf_weight": 0.4},
    )
    assert model.entities.neural is not None
    assert model.entities.crf_weight == 0.4
    assert model.entities.tagger is not None
    assert model.entities.tagger.params()["algorithm"] == "lbfgs"  # probabilistic marginals
    loaded = NluModel.load(model.save(tmp_path / "model"))
    assert (tmp_path / "model" / "dense_tagger" / "encoder.safetensors").is_file()
    text = "show flights from Boston to San Francisco on monday"
    assert loaded.parse(text).entities == model.parse(text).entities
    assert {e.entity for e in loaded.parse(text).entities} == {"from_city", "to_city", "date"}


@pytest.mark.slow
def test_training_cut_short_by_a_time_budget_is_recorded(tmp_path: Path) -> None:
    """A busy machine ends training early; the model says which part and how far it got."""
    fast_dense = {"method": "finetune", "train_layers": 1, "num_threads": 1}
    model = NluModel.train(
        _data(),
        "accurate",
        intent_params={"dense": {**fast_dense, "epochs": 200, "time_budget_s": 0.5}},
        tagger_params=PARAMS,
        # far more L-BFGS iterations than the CRF's share of the 570 s would hold
        crf_params={"max_iterations": 10**8},
    )
    cut, crf = model.info["shortened_by_time_budget"]
    assert cut["part"] == "intent model 'dense'"
    assert 0 < cut["steps"] < cut["planned_steps"]
    assert crf["part"] == "CRF entity tagger"
    assert 0 < crf["steps"] < crf["planned_steps"] == 10**8
    assert "epochs_done" not in crf  # iterations, not epochs
    loaded = NluModel.load(model.save(tmp_path / "model"))
    assert loaded.info["shortened_by_time_budget"] == [cut, crf]
    full = NluModel.train(_data(), "accurate", intent_params={"dense": {**fast_dense, "epochs": 1}})
    assert full.info["shortened_by_time_budget"] == []


def test_small_data_gets_no_seen_vectors_by_default(tagger: DenseTokenTagger) -> None:
    # as for the CRF (gazetteer.MIN_EXAMPLES): template data would teach the memory
    assert len(_data().examples) < MIN_GAZETTEER_EXAMPLES
    assert tagger.seen_tags_ == [] and not tagger.gazetteer
    assert tagger._require_fitted()[1].seen_vectors is None


def test_seen_vectors_are_learned_saved_and_loaded(tmp_path: Path) -> None:
    texts, labels, intents = _bio(_data())
    tokens = [tokenize(t) for t in texts]
    seen = DenseTokenTagger(**PARAMS, seen_feature=True).fit(texts, tokens, labels, intents)
    assert seen.seen_tags_ == [
        f"g={p}:{y}" for y in ("date", "from_city", "to_city") for p in ("B", "I")
    ]
    vectors = seen._require_fitted()[1].seen_vectors
    assert vectors is not None and float(vectors.detach().abs().sum()) > 0  # trained
    seen.save(tmp_path / "tagger")
    loaded = DenseTokenTagger.load(tmp_path / "tagger")
    assert loaded.seen_tags_ == seen.seen_tags_
    text = "show flights from Dallas to New York on friday"
    np.testing.assert_array_equal(
        loaded.predict_proba(text, tokenize(text)), seen.predict_proba(text, tokenize(text))
    )
    # the seen tags and the vectors must agree
    meta = tmp_path / "tagger" / "dense_tagger.json"
    meta.write_text(meta.read_text().replace('"g=B:date",', "", 1))
    with pytest.raises(ModelError, match="seen vectors"):
        DenseTokenTagger.load(tmp_path / "tagger")


def test_a_tagger_saved_before_the_seen_vectors_loads(tmp_path: Path) -> None:
    texts, labels, intents = _bio(_data())
    tokens = [tokenize(t) for t in texts]
    tagger = DenseTokenTagger(**PARAMS, seen_feature=False).fit(texts, tokens, labels, intents)
    tagger.save(tmp_path / "tagger")
    meta_file = tmp_path / "tagger" / "dense_tagger.json"
    meta = json.loads(meta_file.read_text())
    del meta["seen_tags"], meta["gazetteer"], meta["params"]["seen_feature"]
    meta_file.write_text(json.dumps(meta))
    loaded = DenseTokenTagger.load(tmp_path / "tagger")
    assert loaded.seen_tags_ == [] and not loaded.gazetteer
    assert loaded.params["seen_feature"] is False
    text = "a ticket from Denver to Dallas"
    np.testing.assert_array_equal(
        loaded.predict_proba(text, tokenize(text)), tagger.predict_proba(text, tokenize(text))
    )
