"""Experiments (a), (b), (d) on frozen MiniLM embeddings; validation split only.

(a) frozen embeddings + logistic regression (C sweep)
(b) TF-IDF logistic regression alone, concatenated TF-IDF+embedding features, and a
    probability average of the two models
(d) cheap augmentation: lower-cased / punctuation-stripped copies of train texts

Run: .venv/bin/python bench/experiments/dense_frozen.py [set ...]
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from dense_common import SETS, frozen_embeddings, load, oos_metrics
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion

torch.set_num_threads(2)
warnings.filterwarnings("ignore")


def tfidf() -> FeatureUnion:
    return FeatureUnion(
        [
            ("w", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )


def lr(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000)


def acc(model_classes: np.ndarray, proba: np.ndarray, gold: list[str]) -> float:
    return float((model_classes[proba.argmax(1)] == np.array(gold)).mean())


def oos_threshold(proba_cv: np.ndarray, classes: np.ndarray, gold: list[str]) -> float:
    """Threshold maximising mean(in-scope acc, oos recall) on out-of-fold train probs."""
    best, best_t = -1.0, 0.5
    for t in np.linspace(0.05, 0.95, 91):
        ins, rec = oos_metrics(proba_cv, classes, gold, t)
        if (ins + rec) / 2 > best:
            best, best_t = (ins + rec) / 2, float(t)
    return best_t


def report(name: str, label: str, classes, proba, yv, seconds, extra="") -> None:
    if name == "clinc150":
        # intent accuracy over all 151 labels without threshold, then with one
        print(
            f"{name:9s} {label:38s} acc={acc(classes, proba, yv):.4f} {extra} train={seconds:.1f}s",
            flush=True,
        )
    else:
        print(
            f"{name:9s} {label:38s} acc={acc(classes, proba, yv):.4f} train={seconds:.1f}s",
            flush=True,
        )


def main(sets: list[str]) -> None:
    for name in sets:
        xt, yt = load(name, "train")
        xv, yv = load(name, "validation")
        et, ev = frozen_embeddings(name, "train"), frozen_embeddings(name, "validation")
        # (a)
        best_c, best_a, dense_p = None, -1.0, None
        for c in [1, 4, 16, 64]:
            t0 = time.perf_counter()
            m = lr(c).fit(et, yt)
            secs = time.perf_counter() - t0
            p = m.predict_proba(ev)
            report(name, f"(a) frozen+LR C={c}", m.classes_, p, yv, secs)
            a = acc(m.classes_, p, yv)
            if a > best_a:
                best_c, best_a, dense_p = c, a, p
        # (b) TF-IDF LR alone
        t0 = time.perf_counter()
        vec = tfidf().fit(xt)
        st, sv = vec.transform(xt), vec.transform(xv)
        sm = lr(20).fit(st, yt)
        ssecs = time.perf_counter() - t0
        sparse_p = sm.predict_proba(sv)
        report(name, "(b0) tfidf LR C=20", sm.classes_, sparse_p, yv, ssecs)
        # (b) probability average
        for w in [0.3, 0.5, 0.7]:
            p = w * dense_p + (1 - w) * sparse_p
            report(name, f"(b1) avg w_dense={w} (C={best_c})", sm.classes_, p, yv, 0)
        # (b) concatenation
        for scale in [1.0]:
            t0 = time.perf_counter()
            xt_c = sp.hstack([st, sp.csr_matrix(et * scale)]).tocsr()
            xv_c = sp.hstack([sv, sp.csr_matrix(ev * scale)]).tocsr()
            cm = lr(20).fit(xt_c, yt)
            secs = time.perf_counter() - t0 + ssecs
            p = cm.predict_proba(xv_c)
            extra = ""
            if name == "clinc150" and "--oos-cv" in sys.argv:
                cv = StratifiedKFold(5, shuffle=True, random_state=0)
                pcv = cross_val_predict(lr(20), xt_c, yt, cv=cv, method="predict_proba")
                thr = oos_threshold(pcv, cm.classes_, yt)
                ins, rec = oos_metrics(p, cm.classes_, yv, thr)
                extra = f"thr={thr:.2f} in-scope={ins:.4f} oos-recall={rec:.4f}"
            report(name, f"(b2) concat scale={scale}", cm.classes_, p, yv, secs, extra)


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--")] or SETS)
