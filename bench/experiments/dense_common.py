"""Shared helpers for the dense-encoder validation experiments (validation split only)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
CACHE = Path(os.environ.get("DENSE_CACHE", "/tmp/dense_cache"))
SETS = ["banking77", "clinc150", "snips", "atis"]


def load(name: str, split: str) -> tuple[list[str], list[str]]:
    """Texts and intents of one split."""
    texts, labels = [], []
    with (DATA / name / f"{split}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["intent"])
    return texts, labels


def frozen_embeddings(name: str, split: str) -> np.ndarray:
    """Frozen MiniLM embeddings of one split, cached on disk (they take minutes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.{split}.npy"
    if path.exists():
        return np.load(path)
    from intentbridge.understanding.encoders import SentenceEncoder

    texts, _ = load(name, split)
    enc = SentenceEncoder()
    t0 = time.perf_counter()
    emb = enc.encode(texts)
    print(f"encoded {name}/{split}: {len(texts)} in {time.perf_counter() - t0:.1f}s", flush=True)
    np.save(path, emb)
    return emb


def oos_metrics(
    proba: np.ndarray, classes: np.ndarray, gold: list[str], threshold: float
) -> tuple[float, float]:
    """CLINC150 in-scope accuracy and OOS recall when max-prob < threshold means oos."""
    pred = classes[proba.argmax(1)].astype(object)
    pred[proba.max(1) < threshold] = "oos"
    gold_a = np.array(gold, dtype=object)
    ins = gold_a != "oos"
    return float((pred[ins] == gold_a[ins]).mean()), float((pred[~ins] == "oos").mean())
