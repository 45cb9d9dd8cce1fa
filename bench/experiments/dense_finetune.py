"""Experiment (c): fine-tune MiniLM on CPU through DenseIntentClassifier; validation only.

Prints validation accuracy, negative log-likelihood and expected calibration error for a
few softmax temperatures, and saves validation probabilities for the ensemble study
(dense_ensemble.py).

Run: .venv/bin/python bench/experiments/dense_finetune.py SET [key=value ...]
e.g. dense_finetune.py banking77 epochs=3 learning_rate=1e-4 tag=e3
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np
import torch
from dense_common import CACHE, load

from intentbridge.understanding.dense import DenseIntentClassifier

torch.set_num_threads(2)


def ece(proba: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    conf = proba.max(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def main() -> None:
    name = sys.argv[1]
    params: dict[str, object] = {}
    tag = "default"
    train_split = "train"
    for arg in sys.argv[2:]:
        k, v = arg.split("=", 1)
        if k == "tag":
            tag = v
            continue
        if k == "split":  # e.g. train80: fit on 80% of train, score the other 20%
            train_split = v
            continue
        params[k] = v if k == "method" else float(v)
    xt, yt = load(name, "train")
    xv, yv = load(name, "validation")
    if train_split == "train80":
        from sklearn.model_selection import train_test_split

        xt, xv, yt, yv = train_test_split(xt, yt, test_size=0.2, random_state=0, stratify=yt)
    t0 = time.perf_counter()
    clf = DenseIntentClassifier(**params).fit(xt, yt)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = clf.predict_proba(xv)
    pred_s = time.perf_counter() - t0
    gold = np.array(yv)
    known = np.isin(gold, clf.classes_)
    correct = clf.classes_[proba.argmax(1)] == gold
    gold_idx = np.array(
        [np.searchsorted(clf.classes_, g) if k else 0 for g, k in zip(gold, known, strict=True)]
    )
    out = {
        "set": name,
        "tag": tag,
        "params": params,
        "acc": float(correct.mean()),
        "train_s": round(train_s, 1),
        "predict_s": round(pred_s, 1),
        "fit_info": clf.fit_info,
    }
    # Re-temper the stored probabilities (log p is logits up to a constant).
    logp = np.log(np.clip(proba, 1e-30, None)).astype(np.float64)
    for t in [0.5, 0.75, 1.0, 1.5, 2.0]:
        z = logp / t
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        nll = float(-np.log(np.clip(p[known, gold_idx[known]], 1e-30, None)).mean())
        out[f"T{t}"] = {"nll": round(nll, 4), "ece": round(ece(p[known], correct[known]), 4)}
    print(json.dumps(out), flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(
        CACHE / f"ft_{name}_{tag}_{train_split}.npz", proba=proba, classes=clf.classes_, gold=gold
    )
    with open(CACHE / "finetune_results.jsonl", "a") as fh:
        fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
