"""What skipping the transformer would change, at several cuts, on a saved accurate model.

    python bench/experiments/cascade_cuts.py MODEL_DIR SET

Intent: where the TF-IDF model's top probability reaches a cut, its answer alone
(here at the combination's temperature) replaces the combination; printed: the share
of messages skipped, how many decisions changed, and the accuracy. Entities: where the
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

from intentbridge.understanding import entities as entities_module
from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.model import NluModel

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
CUTS = (0.999, 0.995, 0.99, 0.98, 0.95, 0.9)


def intent_rows(model: NluModel, texts: list[str], gold: np.ndarray) -> None:
    per = [model._aligned_probabilities(k, texts) for k in range(len(model.intent_models))]
    cal = dataclasses.replace(model.calibration, first_sure=None)
    full = cal.apply(per)
    classes = np.array(model.classes)
    known = np.array([model.knows_anything_in(t) for t in texts])

    def score(p: np.ndarray) -> dict[str, Any]:
        decided = np.where(
            (p.max(axis=1) >= cal.threshold) & known, classes[p.argmax(axis=1)], "nlu_fallback"
        )
        oos = gold == "oos"
        right = (decided == gold) | (oos & (decided == "nlu_fallback"))
        row: dict[str, Any] = {"accuracy": round(100 * float(right.mean()), 2)}
        if oos.any():
            row["in_scope"] = round(100 * float((decided[~oos] == gold[~oos]).mean()), 2)
            outside = np.isin(decided[oos], ["oos", "nlu_fallback"])
            row["oos_recall"] = round(100 * float(outside.mean()), 1)
        return row

    print(json.dumps({"intent cut": None, **score(full)}), flush=True)
    if len(per) < 2:
        return
    for cut in CUTS:
        sure = per[0].max(axis=1) >= cut
        alt = full.copy()
        alt[sure] = cal.apply([per[0][sure], per[0][sure]])
        changed = int((alt.argmax(axis=1) != full.argmax(axis=1)).sum())
        skipped = round(float(sure.mean()), 3)
        print(json.dumps({"intent cut": cut, "skipped": skipped, "changed": changed, **score(alt)}))


def entity_rows(model: NluModel, valid: list[Any]) -> None:
    neural, weight = model.entities.neural, model.entities.crf_weight
    if neural is None:
        return
    counts = {"parses": 0, "skipped": 0}
    mix_labels = entities_module._Mix.labels

    def counting(self: Any, *args: Any) -> Any:
        counts["parses"] += 1
        neural_calls = getattr(self.neural, "_calls", 0)
        out = mix_labels(self, *args)
        counts["skipped"] += int(getattr(self.neural, "_calls", 0) == neural_calls)
        return out

    predict = type(neural).predict_proba

    def predict_counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._calls = getattr(self, "_calls", 0) + 1
        return predict(self, *args, **kwargs)

    entities_module._Mix.labels = counting  # type: ignore[method-assign]
    type(neural).predict_proba = predict_counted  # type: ignore[method-assign]
    for cut in (None, *CUTS):
        model.entities.set_neural(neural, weight, cut)
        counts.update(parses=0, skipped=0)
        m = evaluate(model, valid, latency_sample=300)
        row = {
            "crf cut": cut,
            "skipped": round(counts["skipped"] / max(counts["parses"], 1), 3),
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
