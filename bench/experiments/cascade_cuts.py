"""What skipping the transformer would change, at several cuts, on a saved accurate model.

    python bench/experiments/cascade_cuts.py MODEL_DIR SET

Intent: where the TF-IDF model's top probability reaches a cut, its answer alone (at
its own temperature, as a parse gives it) replaces the combination; printed: the
share of messages skipped, how many decisions (intent or fallback) changed, and the
accuracy. Entities: where the
CRF's best label reaches a cut on every token, the CRF's marginals alone are decoded;
printed: the share skipped, entity F1 and frame accuracy, through :func:`evaluate`.
The model's own cuts are switched off first, so every row starts from "ask every
model". Validation only; no test set is read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from intentbridge.types import FALLBACK_INTENT
from intentbridge.understanding import entities as entities_module
from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.model import NluModel

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
CUTS = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9)


def intent_rows(model: NluModel, texts: list[str], gold: np.ndarray) -> None:
    per = [model._aligned_probabilities(k, texts) for k in range(len(model.intent_models))]
    cal = model.calibration  # its own cut switched off by main()
    classes = np.array([*model.classes, FALLBACK_INTENT])
    known = np.array([model.knows_anything_in(t) for t in texts])

    def decide(p: np.ndarray) -> np.ndarray:
        top = np.where(p.max(axis=1) >= cal.threshold, p.argmax(axis=1), -1)
        return classes[np.where(known, top, -1)]

    def score(decided: np.ndarray) -> dict[str, Any]:
        oos = gold == "oos"
        right = (decided == gold) | (oos & (decided == FALLBACK_INTENT))
        row: dict[str, Any] = {"accuracy": round(100 * float(right.mean()), 2)}
        if oos.any():
            row["in_scope"] = round(100 * float((decided[~oos] == gold[~oos]).mean()), 2)
            outside = np.isin(decided[oos], ["oos", FALLBACK_INTENT])
            row["oos_recall"] = round(100 * float(outside.mean()), 1)
        return row

    full = decide(cal.apply(per))
    print(json.dumps({"intent cut": None, **score(full)}), flush=True)
    if len(per) < 2:
        return
    alone = decide(cal.apply_first(per[0]))  # as a parse answers from it: own temperature
    for cut in CUTS:
        sure = per[0].max(axis=1) >= cut
        cascade = np.where(sure, alone, full)
        changed = int((cascade != full).sum())
        skipped = round(float(sure.mean()), 3)
        print(
            json.dumps(
                {"intent cut": cut, "skipped": skipped, "changed": changed, **score(cascade)}
            )
        )


def entity_rows(model: NluModel, valid: list[Any]) -> None:
    neural, weight = model.entities.neural, model.entities.crf_weight
    if neural is None:
        return
    counts = {"parses": 0, "tagger": 0}
    mix_labels = entities_module._Mix.labels
    predict = type(neural).predict_proba

    def counting_labels(self: Any, *args: Any) -> Any:
        counts["parses"] += 1
        return mix_labels(self, *args)

    def counting_predict(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["tagger"] += 1
        return predict(self, *args, **kwargs)

    entities_module._Mix.labels = counting_labels  # type: ignore[method-assign]
    type(neural).predict_proba = counting_predict  # type: ignore[method-assign]
    for cut in (None, *CUTS):
        model.entities.set_neural(neural, weight, cut)
        counts.update(parses=0, tagger=0)
        m = evaluate(model, valid, latency_sample=300)
        row = {
            "crf cut": cut,
            "skipped": round(1 - counts["tagger"] / max(counts["parses"], 1), 3),
            "entity_f1": round(100 * m["entity_f1"], 2),
            "frame_accuracy": round(100 * m["frame_accuracy"], 2),
            "parse_p50_ms": round(m["latency_ms"]["p50"], 2),
        }
        print(json.dumps(row), flush=True)


def main(model_dir: str, name: str) -> None:
    model = NluModel.load(model_dir)
    model.calibration = dataclasses.replace(model.calibration, first_sure=None)
    valid = load_training_data(DATA / name / "validation.jsonl").examples
    texts = [ex.text for ex in valid]
    intent_rows(model, texts, np.array([ex.intent for ex in valid]))
    entity_rows(model, valid)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
