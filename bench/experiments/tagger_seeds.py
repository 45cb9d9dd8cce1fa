"""Does a second transformer tagger (another seed) help the accurate pipeline's mix?

    python bench/experiments/tagger_seeds.py MODEL_DIR SET [SEED]

Trains a tagger on ``SET``'s train split with the parameters of the tagger inside the
accurate model ``MODEL_DIR`` but seed ``SEED`` (default 1; saved to
``$TAGX/SET-tagger-sSEED`` and reused when there), then scores the model's entity stack
on the validation split with its own tagger, the new one, and both averaged
(arithmetic and geometric) before the mix with the CRF. One JSON line per variant.
Validation only; no test set is read. Round 10 (docs/nlu-accurate.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
WORK = Path(os.environ.get("TAGX", "/tmp/tagx"))


class Averaged:
    """Taggers with the same labels, their per-token probabilities averaged."""

    def __init__(self, taggers: Sequence[Any], *, geometric: bool) -> None:
        self.taggers, self.geometric = list(taggers), geometric
        self.labels_ = self.taggers[0].labels_

    def predict_proba(self, text: str, tokens: Sequence[Any], intent: str | None = None) -> Any:
        probs = [t.predict_proba(text, tokens, intent).astype(np.float64) for t in self.taggers]
        if self.geometric:
            logp = sum(np.log(np.clip(p, 1e-9, None)) for p in probs) / len(probs)
            mixed = np.exp(logp - logp.max(axis=1, keepdims=True))
        else:
            mixed = sum(probs) / len(probs)
        return mixed / mixed.sum(axis=1, keepdims=True)


def main(model_dir: str, name: str, seed: int) -> None:
    from dense_tagger_eval import entity_row

    from intentbridge.understanding.data import load_training_data
    from intentbridge.understanding.dense_tagger import DenseTokenTagger
    from intentbridge.understanding.model import NluModel
    from intentbridge.understanding.training import train_dense_tagger

    model = NluModel.load(model_dir)
    own: Any = model.entities.neural
    if own is None:
        raise SystemExit(
            f"{model_dir} has no transformer tagger (train it with --pipeline accurate)"
        )
    saved = WORK / f"{name}-tagger-s{seed}"
    if saved.exists():
        other = DenseTokenTagger.load(saved)
    else:
        params = {k: v for k, v in own.params.items() if k != "seed"}
        params["time_budget_s"] = float(os.environ.get("BUDGET", "570"))
        params["num_threads"] = None
        other = train_dense_tagger(
            load_training_data(DATA / name / "train.jsonl"), params, seed=seed
        )
        print(json.dumps({"trained": other.fit_info}), flush=True)
        other.save(saved)
    if list(own.labels_) != list(other.labels_):
        raise SystemExit("the two taggers know different labels")
    valid = load_training_data(DATA / name / "validation.jsonl").examples
    weight = model.entities.crf_weight
    variants: dict[str, Any] = {
        "own tagger": own,
        f"seed {seed}": other,
        "both, arithmetic mean": Averaged([own, other], geometric=False),
        "both, geometric mean": Averaged([own, other], geometric=True),
    }
    for label, tagger in variants.items():
        model.entities.set_neural(tagger, weight)
        print(json.dumps(entity_row(model, valid, name, label)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
