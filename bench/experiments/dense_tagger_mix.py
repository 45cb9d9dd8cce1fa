"""Re-mix a saved tagger's probabilities with the CRF's marginals in other ways.

    python bench/experiments/dense_tagger_mix.py SET RUN

Loads the ``fast`` model with an L-BFGS CRF (``$TAGX/lbfgs-SET``) and the tagger saved
by ``dense_tagger.py`` (``$TAGX/runs/SET-RUN``), then scores arithmetic ("lin") and
weighted geometric ("geo") means at several CRF weights through :func:`evaluate`.
Each message's two probability tables are computed once. Validation only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.dense_tagger import DenseTokenTagger
from intentbridge.understanding.entities import _Mix
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.tagger import constrained_decode
from intentbridge.understanding.tokenizer import Token

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
WORK = Path(os.environ.get("TAGX", "/tmp/tagx"))
GRID = (("lin", (0.0, 0.3, 0.4, 0.5, 0.6)), ("geo", (0.3, 0.5, 0.7)))


class Remix:
    """Stands in for the recognizer's mix: one way of combining the two tables."""

    def __init__(self, base: _Mix) -> None:
        self.base = base
        self.kind, self.weight = "lin", 0.5
        self._tables: dict[tuple[str, str | None], tuple[np.ndarray, np.ndarray]] = {}

    def _pair(
        self, text: str, tokens: Sequence[Token], features: list[list[str]], intent: str | None
    ) -> tuple[np.ndarray, np.ndarray]:
        key = (text, intent)
        if key not in self._tables:
            neural = self.base.neural.predict_proba(text, tokens, intent).astype(np.float64)
            crf = self.base.crf.marginals(features)
            aligned = np.zeros_like(neural)
            known = [j for j, c in enumerate(self.base.columns) if c >= 0]
            aligned[:, known] = crf[:, [self.base.columns[j] for j in known]]
            self._tables[key] = (aligned, neural)
        return self._tables[key]

    def labels(
        self, text: str, tokens: list[Token], features: list[list[str]], intent: str | None
    ) -> tuple[list[str], list[float]]:
        crf, neural = self._pair(text, tokens, features, intent)
        w = self.weight
        if self.kind == "lin":
            probs = w * crf + (1 - w) * neural
        else:
            logp = w * np.log(np.clip(crf, 1e-9, None)) + (1 - w) * np.log(
                np.clip(neural, 1e-9, None)
            )
            probs = np.exp(logp - logp.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
        return constrained_decode(probs, self.base.names, self.base.allowed)


def main(name: str, run: str) -> None:
    model = NluModel.load(WORK / f"lbfgs-{name}")
    crf = model.entities.tagger
    if crf is None:
        raise SystemExit("the model has no CRF")
    tagger = DenseTokenTagger.load(WORK / "runs" / f"{name}-{run}")
    valid = load_training_data(DATA / name / "validation.jsonl").examples
    remix = Remix(_Mix.build(crf, tagger, 0.5))
    model.entities._mix = remix  # an experiment's stand-in for the library's mix
    for kind, weights in GRID:
        for weight in weights:
            remix.kind, remix.weight = kind, weight
            m = evaluate(model, valid, latency_sample=1)
            row = {"set": name, "run": run, "mix": kind, "crf_weight": weight}
            row["entity_f1"] = round(100 * m["entity_f1"], 2)
            row["frame_accuracy"] = round(100 * m["frame_accuracy"], 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
