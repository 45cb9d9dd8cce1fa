"""Validation experiments for the accurate pipeline's transformer token tagger.

    python bench/experiments/dense_tagger.py SET NAME [key=value ...]

Trains a :class:`DenseTokenTagger` on ``SET``'s train split with the given parameters,
then scores entity F1 and frame accuracy on the validation split through the
project's own :func:`evaluate`, with the intents and CRF of a ``fast`` model trained
on the same train split (``$TAGX/fast-SET``, trained first if missing): CRF alone,
the tagger alone (``crf_weight=0``), and mixes. One JSON line per run is appended to
``$TAGX/results.jsonl``. Validation only; no test set is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.dense_tagger import DenseTokenTagger
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.tagger import bio_labels
from intentbridge.understanding.tokenizer import Token, tokenize

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
WORK = Path(os.environ.get("TAGX", "/tmp/tagx"))
WEIGHTS = (1.0, 0.0, 0.3, 0.5, 0.7)


class Memo:
    """Remembers the tagger's probabilities so several mixes cost one forward each."""

    def __init__(self, tagger: DenseTokenTagger) -> None:
        self.tagger = tagger
        self.labels_ = tagger.labels_
        self._seen: dict[tuple[str, str | None], np.ndarray] = {}

    def predict_proba(
        self, text: str, tokens: Sequence[Token], intent: str | None = None
    ) -> np.ndarray:
        key = (text, intent)
        if key not in self._seen:
            self._seen[key] = self.tagger.predict_proba(text, tokens, intent)
        return self._seen[key]


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def fast_model(name: str) -> NluModel:
    path = WORK / f"{os.environ.get('CRF', 'fast')}-{name}"
    if not (path / "metadata.json").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "intentbridge",
                "nlu",
                "train",
                str(DATA / name / "train.jsonl"),
                "--out",
                str(path),
            ],
            check=True,
        )
    return NluModel.load(path)


def main(argv: list[str]) -> None:
    name, run = argv[0], argv[1]
    params = {k: parse_value(v) for k, v in (a.split("=", 1) for a in argv[2:])}
    train = load_training_data(DATA / name / "train.jsonl").examples
    valid = list(load_training_data(DATA / name / "validation.jsonl").examples)
    texts = [ex.text for ex in train]
    tokens = [tokenize(t) for t in texts]
    labels = [
        bio_labels(toks, [(s.start, s.end, s.label) for s in ex.entities])
        for toks, ex in zip(tokens, train, strict=True)
    ]
    started = time.perf_counter()
    tagger = DenseTokenTagger(**params).fit(
        texts, tokens, labels, [ex.intent for ex in train], log=lambda m: print(m, flush=True)
    )
    seconds = time.perf_counter() - started
    tagger.save(WORK / "runs" / f"{name}-{run}")
    model = fast_model(name)
    memo = Memo(tagger)
    rows = []
    for weight in WEIGHTS:
        if weight == 1.0:
            model.entities.set_neural(None)
        else:
            model.entities.set_neural(memo, weight)
        m = evaluate(model, valid, latency_sample=1)
        rows.append(
            {
                "set": name,
                "run": run,
                "params": params,
                "crf_weight": weight,
                "entity_f1": round(100 * m["entity_f1"], 2),
                "frame_accuracy": round(100 * m["frame_accuracy"], 2),
                "intent_accuracy": round(100 * m["intent_accuracy"], 2),
                "train_s": round(seconds, 1),
                "fit_info": tagger.fit_info,
            }
        )
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "fit_info"}), flush=True)
    with (WORK / "results.jsonl").open("a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
