"""Values seen in training as tagger features: the table of docs/nlu-accurate.md (round 9).

    python bench/experiments/seen_values.py MODEL SET [key=value ...]

``MODEL`` is an ``accurate`` model trained on ``SET``'s train split (its intents and
rule extractors are used throughout). On that split this trains the L-BFGS CRF
without and with the gazetteer, and the transformer tagger without and with seen
vectors (``key=value`` overrides the tagger's parameters, e.g. ``epochs=2``), then
scores on the validation split, through :func:`evaluate`:

- each CRF alone and each tagger alone (CRF weight 0);
- the four CRF + tagger mixes (CRF weight 0.5);
- the default mix at other CRF weights and at other cascade cuts (``crf_sure``);
- a hard rule on top: a predicted span takes the label its value had in training
  when that label had at least a share *s* of at least *n* annotations (fixed and
  broken labels counted against gold).

One JSON line per row on stdout, then a markdown table. The taggers train in this
process with one thread and no time budget (about 8 minutes each for SNIPS on a
quiet machine). Validation only; no test set is read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from intentbridge.understanding.data import TrainingData, load_training_data
from intentbridge.understanding.entities import CRF_SURE, EntityRecognizer
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.gazetteer import span_phrase
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.tokenizer import tokenize
from intentbridge.understanding.training import train_dense_tagger

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
WEIGHTS = (0.3, 0.4, 0.6, 0.7)
CUTS = (None, 0.999, 0.995, 0.99)
RULES = ((0.7, 1), (0.9, 2), (1.0, 3))

rows: list[dict[str, Any]] = []


def row(name: str, model: NluModel, valid: list[Any]) -> None:
    m = evaluate(model, valid, latency_sample=200)
    out = {
        "row": name,
        "entity_f1": round(100 * m["entity_f1"], 2),
        "frame_accuracy": round(100 * m["frame_accuracy"], 2),
        "parse_p50_ms": round(m["latency_ms"]["p50"], 2),
    }
    rows.append(out)
    print(json.dumps(out), flush=True)


def relabel_counts(model: NluModel, valid: list[Any], share: float, least: int) -> tuple[int, int]:
    """Labels the hard rule would fix and break on ``valid``."""
    gazetteer = model.entities.gazetteer
    fixed = broken = 0
    for ex in valid:
        gold = {(s.start, s.end): s.label for s in ex.entities}
        tokens = tokenize(ex.text)
        for e in model.parse(ex.text).entities:
            label = e.entity + (f"#{e.role}" if e.role else "")
            counts = gazetteer.phrases.get(span_phrase(tokens, e.start, e.end), {})
            total = sum(counts.values())
            if not total:
                continue
            top, n = max(counts.items(), key=lambda kv: kv[1])
            if top != label and n >= least and n / total >= share:
                truth = gold.get((e.start, e.end))
                fixed += truth == top
                broken += truth == label
    return fixed, broken


def crf(train: TrainingData, model: NluModel, *, gazetteer: bool) -> EntityRecognizer:
    started = time.perf_counter()
    recognizer = EntityRecognizer.train(
        train,
        rules=model.entities.rules,
        crf_params={"algorithm": "lbfgs", "max_iterations": 100},
        gazetteer=gazetteer,
    )
    print(f"# CRF (gazetteer={gazetteer}) {time.perf_counter() - started:.0f} s", flush=True)
    return recognizer


def main(model_dir: str, name: str, overrides: dict[str, Any]) -> None:
    model = NluModel.load(model_dir)
    train = load_training_data(DATA / name / "train.jsonl")
    valid = list(load_training_data(DATA / name / "validation.jsonl").examples)
    crfs = {g: crf(train, model, gazetteer=g) for g in (False, True)}
    taggers = {}
    for seen in (False, True):
        params = {"num_threads": 1, "time_budget_s": None, **overrides, "seen_feature": seen}
        taggers[seen] = train_dense_tagger(train, params)
        print(f"# tagger (seen={seen}) {taggers[seen].fit_info}", flush=True)
    for g, recognizer in crfs.items():
        model.entities = recognizer
        recognizer.set_neural(None)
        row(f"CRF alone, gazetteer={g}", model, valid)
    for seen, tagger in taggers.items():
        crfs[True].set_neural(tagger, 0.0)
        model.entities = crfs[True]
        row(f"tagger alone, seen vectors={seen}", model, valid)
    for g, recognizer in crfs.items():
        model.entities = recognizer
        for seen, tagger in taggers.items():
            recognizer.set_neural(tagger, 0.5)
            row(f"mix, gazetteer={g}, seen vectors={seen}", model, valid)
    default = crfs[True]
    model.entities = default
    for w in WEIGHTS:
        default.set_neural(taggers[True], w)
        row(f"default mix, CRF weight {w}", model, valid)
    for cut in CUTS:
        default.set_neural(taggers[True], 0.5, cut)
        row(f"default mix, crf_sure={cut}", model, valid)
    default.set_neural(taggers[True], 0.5, CRF_SURE)
    for share, least in RULES:
        fixed, broken = relabel_counts(model, valid, share, least)
        print(json.dumps({"rule": f"share>={share}, n>={least}", "fixed": fixed, "broken": broken}))
    print(f"\n| {name} (validation) | entity F1 | frame acc | parse p50 ms |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['entity_f1']} | {r['frame_accuracy']} | {r['parse_p50_ms']} |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    extra = {}
    for arg in sys.argv[3:]:
        key, _, raw = arg.partition("=")
        extra[key] = json.loads(raw)
    main(sys.argv[1], sys.argv[2], extra)
