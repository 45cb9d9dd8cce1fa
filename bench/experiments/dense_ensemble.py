"""Ensembles of dense and TF-IDF probabilities on validation (experiment b, d).

Loads/caches TF-IDF LR validation probabilities and frozen-embedding LR probabilities,
plus any fine-tuned probabilities saved by dense_finetune.py, and prints the accuracy of
weighted averages. Run: .venv/bin/python bench/experiments/dense_ensemble.py [set ...]
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from dense_common import CACHE, SETS, frozen_embeddings, load
from dense_frozen import tfidf
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
C_DENSE = {"banking77": 16, "clinc150": 16, "snips": 16, "atis": 16}


def cached_proba(path, make):
    if path.exists():
        d = np.load(path, allow_pickle=False)
        return d["proba"], d["classes"]
    t0 = time.perf_counter()
    proba, classes = make()
    print(f"  made {path.name} in {time.perf_counter() - t0:.0f}s", flush=True)
    np.savez(path, proba=proba, classes=classes)
    return proba, classes


def main(sets: list[str]) -> None:
    for name in sets:
        xt, yt = load(name, "train")
        xv, yv = load(name, "validation")
        gold = np.array(yv)

        def sparse(xt=xt, yt=yt, xv=xv):
            vec = tfidf().fit(xt)
            m = LogisticRegression(C=20, max_iter=3000).fit(vec.transform(xt), yt)
            return m.predict_proba(vec.transform(xv)), m.classes_

        def frozen(c, name=name, yt=yt):
            def make():
                m = LogisticRegression(C=c, max_iter=3000)
                m.fit(frozen_embeddings(name, "train"), yt)
                return m.predict_proba(frozen_embeddings(name, "validation")), m.classes_

            return make

        sp, classes = cached_proba(CACHE / f"tfidf_{name}.npz", sparse)
        models = {"frozen16": cached_proba(CACHE / f"frozen16_{name}.npz", frozen(16))[0]}
        for path in sorted(CACHE.glob(f"ft_{name}_*_train.npz")):
            d = np.load(path, allow_pickle=False)
            assert (d["classes"] == classes).all()
            models[path.stem[len(f"ft_{name}_") : -len("_train")]] = d["proba"]

        def acc(p, classes=classes, gold=gold):
            return (classes[p.argmax(1)] == gold).mean()

        print(f"{name}: tfidf={acc(sp):.4f}", flush=True)
        for key, dp in models.items():
            row = " ".join(f"w{w}={acc(w * dp + (1 - w) * sp):.4f}" for w in (0.3, 0.5, 0.7, 1.0))
            print(f"  {key:22s} {row}", flush=True)
        keys = list(models)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                p3 = (models[a] + models[b] + sp) / 3
                p2 = (models[a] + models[b]) / 2
                print(f"  {a}+{b}: dense-only={acc(p2):.4f} +tfidf(1/3 each)={acc(p3):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:] or SETS)
