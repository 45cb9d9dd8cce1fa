"""Parse latency of DenseIntentClassifier.predict_proba on one message at a time.

Fits a frozen-head model on part of BANKING77 train (the head's size barely matters:
the cost is MiniLM's forward pass, the same for the fine-tuned method) and times
predict_proba([text]) over validation texts. Run on an otherwise idle machine:
.venv/bin/python bench/experiments/dense_latency.py [threads ...]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from dense_common import load

from intentbridge.understanding.dense import DenseIntentClassifier


def main(threads: list[int]) -> None:
    xt, yt = load("banking77", "train")
    xv, _ = load("banking77", "validation")
    for n in threads:
        os.environ["INTENTBRIDGE_TORCH_THREADS"] = str(n)
        clf = DenseIntentClassifier(method="finetune", epochs=0.05, num_threads=n)
        clf.fit(xt[:3000], yt[:3000])
        for text in xv[:20]:  # warm-up
            clf.predict_proba([text])
        times = []
        for text in xv[20:520]:
            t0 = time.perf_counter()
            clf.predict_proba([text])
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        print(
            f"threads={n} p50={statistics.median(times):.2f} ms "
            f"p90={times[int(len(times) * 0.9)]:.2f} ms p99={times[int(len(times) * 0.99)]:.2f} ms "
            f"load={os.getloadavg()[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 2])
