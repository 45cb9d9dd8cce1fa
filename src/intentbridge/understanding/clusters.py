"""Word clusters learned from the training texts, as features for the entity tagger.

Words that appear in similar contexts ("play [X] on", "rate [X] 5 stars") land in the
same cluster, so the tagger can generalise from a word it saw once to words that
behave alike. Nothing is downloaded: the contexts are the training messages.

1. count each word's neighbours at -2, -1, +1, +2 (among the most frequent words);
2. positive PMI, then a truncated SVD to ``dims`` dimensions, rows L2-normalised;
3. k-means at several sizes (coarse to fine), one cluster id per size.

The SVD and k-means are a few lines of numpy (see below).

Only training needs scipy (for the sparse counts); the result is a plain ``word -> ids`` dict
saved with the model.

>>> clusters = learn_word_clusters(texts)
>>> clusters["westbam"]
['17', '203']
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from intentbridge.understanding.tokenizer import tokenize

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WordClusters = dict[str, list[str]]
"""Lower-cased word -> one cluster id per size (coarse first)."""

_OFFSETS = (-2, -1, 1, 2)


def learn_word_clusters(
    texts: Sequence[str],
    *,
    sizes: Sequence[int] = (64, 256),
    dims: int = 60,
    min_count: int = 2,
    max_contexts: int = 1000,
    seed: int = 0,
) -> WordClusters:
    """Cluster the words seen ``min_count`` times or more (empty on tiny data)."""
    import scipy.sparse as sp

    sentences = [[t.text.lower() for t in tokenize(text)] for text in texts]
    counts = Counter(w for s in sentences for w in s)
    words = sorted(w for w, c in counts.items() if c >= min_count)
    if len(words) < 2 * max(sizes) or len(words) <= dims:
        return {}
    row = {w: i for i, w in enumerate(words)}
    context_words = [w for w, _ in counts.most_common(max_contexts)] + ["<s>", "</s>"]
    col = {
        (off, w): k * len(context_words) + j
        for k, off in enumerate(_OFFSETS)
        for j, w in enumerate(context_words)
    }
    rows: list[int] = []
    cols: list[int] = []
    for sent in sentences:
        padded = ["<s>", "<s>", *sent, "</s>", "</s>"]
        for i, w in enumerate(sent):
            r = row.get(w)
            if r is None:
                continue
            for off in _OFFSETS:
                c = col.get((off, padded[i + 2 + off]))
                if c is not None:
                    rows.append(r)
                    cols.append(c)
    shape = (len(words), len(col))
    matrix = sp.csr_matrix((np.ones(len(rows)), (np.asarray(rows), np.asarray(cols))), shape=shape)
    matrix.sum_duplicates()
    total = matrix.sum()
    row_sum = np.asarray(matrix.sum(axis=1)).ravel()
    col_sum = np.asarray(matrix.sum(axis=0)).ravel()
    coo = matrix.tocoo()
    pmi = np.log(coo.data * total / (row_sum[coo.row] * col_sum[coo.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=shape)
    rng = np.random.default_rng(seed)
    ids: list[list[str]] = [[] for _ in words]
    # small matrices: one BLAS thread is several times faster than a pool fighting
    # other processes for two cores
    with _one_blas_thread():
        vectors = _truncated_svd(ppmi, dims, rng)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        for k in sizes:
            for i, label in enumerate(_kmeans(vectors, k, rng)):
                ids[i].append(str(int(label)))
    return dict(zip(words, ids, strict=True))


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = threadpool_limits(1)
    return limits


def _truncated_svd(matrix: Any, dims: int, rng: np.random.Generator) -> FloatArray:
    """Rows projected on the top ``dims`` singular directions (randomised, 2 power steps).

    Written out rather than scikit-learn's ``TruncatedSVD``: the same result here, and
    a few times faster on a busy machine (no thread pools to wake).
    """
    sketch = matrix @ rng.standard_normal((matrix.shape[1], dims + 10))
    for _ in range(2):
        sketch, _r = np.linalg.qr(matrix @ (matrix.T @ sketch))
    basis, _r = np.linalg.qr(sketch)
    small = np.asarray((matrix.T @ basis).T)
    u, sigma, _vt = np.linalg.svd(small, full_matrices=False)
    out: FloatArray = (basis @ u[:, :dims]) * sigma[:dims]
    return out


def _kmeans(vectors: FloatArray, k: int, rng: np.random.Generator, rounds: int = 25) -> IntArray:
    """Lloyd's k-means on unit vectors (cosine), seeded with k-means++."""
    n = len(vectors)
    centers = np.empty((k, vectors.shape[1]))
    centers[0] = vectors[rng.integers(n)]
    closest = np.full(n, np.inf)
    for c in range(1, k):
        closest = np.minimum(closest, ((vectors - centers[c - 1]) ** 2).sum(axis=1))
        centers[c] = vectors[rng.choice(n, p=closest / closest.sum())]
    labels: IntArray = np.zeros(n, dtype=np.int64)
    for _ in range(rounds):
        labels = np.asarray((vectors @ centers.T).argmax(axis=1), dtype=np.int64)
        for c in range(k):
            members = vectors[labels == c]
            if len(members):
                centers[c] = members.mean(axis=0)
    return labels
