"""Score a trained accurate model's entity stack three ways on a validation split.

    python bench/experiments/dense_tagger_eval.py MODEL_DIR SET

Rows: the model as saved (CRF mixed with the transformer tagger), the CRF alone and
the transformer tagger alone (``crf_weight=0``), all through :func:`evaluate` with
the model's own intents. Validation only; no test set is read.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from intentbridge.understanding.data import TrainingExample, load_training_data
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.model import NluModel

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))


def entity_row(
    model: NluModel, valid: list[TrainingExample], name: str, label: str, latency_sample: int = 300
) -> dict[str, Any]:
    """``model`` scored on ``valid`` as it is now: entity F1, frame and intent accuracy
    (%), parse p50/p95 (ms)."""
    m = evaluate(model, valid, latency_sample=latency_sample)
    return {
        "set": name,
        "variant": label,
        "entity_f1": round(100 * m["entity_f1"], 2),
        "frame_accuracy": round(100 * m["frame_accuracy"], 2),
        "intent_accuracy": round(100 * m["intent_accuracy"], 2),
        "parse_p50_ms": round(m["latency_ms"]["p50"], 2),
        "parse_p95_ms": round(m["latency_ms"]["p95"], 2),
    }


def main(model_dir: str, name: str) -> None:
    model = NluModel.load(model_dir)
    valid = load_training_data(DATA / name / "validation.jsonl").examples
    neural, weight = model.entities.neural, model.entities.crf_weight
    variants = {
        f"crf+tagger (crf_weight {weight})": (neural, weight),
        "crf only": (None, weight),
        "tagger only": (neural, 0.0),
    }
    for label, (tagger, w) in variants.items():
        model.entities.set_neural(tagger, w)
        row = {
            **entity_row(model, valid, name, label),
            "train_s": model.info.get("training_seconds"),
            "load_avg": round(os.getloadavg()[0], 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
