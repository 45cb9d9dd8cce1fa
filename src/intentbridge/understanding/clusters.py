"""Word clusters learned from the training texts, as features for the entity tagger.

Words that appear in similar contexts ("play [X] on", "rate [X] 5 stars") land in the
same cluster, so the tagger can generalise from a word it saw once to words that
behave alike. Nothing is downloaded: the contexts are the training messages.

1. count each word's neighbours at -2, -1, +1, +2 (among the most frequent words);
2. positive PMI, then a truncated SVD to ``dims`` dimensions, rows L2-normalised;
3. k-means at several sizes (coarse to fine), one cluster id per size.

Only training needs scikit-learn and scipy; the result is a plain ``word -> ids`` dict
saved with the model.

>>> clusters = learn_word_clusters(texts)
>>> clusters["westbam"]
['17', '203']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from intentbridge.understanding.tokenizer import tokenize

WordClusters = dict[str, list[str]]
"""Lower-cased word -> one cluster id per size (coarse first)."""

_OFFSETS = (-2, -1, 1, 2)


def learn_word_clusters(
    texts: Sequence[str],
    *,
    sizes: Sequence[int] = (64, 256),
    dims: int = 60,
    min_count: int = 2,
    max_contexts: int = 3000,
    seed: int = 0,
) -> WordClusters:
    """Cluster the words seen ``min_count`` times or more (empty on tiny data)."""
    import scipy.sparse as sp
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD

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
    vectors = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(ppmi)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    ids: list[list[str]] = [[] for _ in words]
    for k in sizes:
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048)
        for i, label in enumerate(km.fit_predict(vectors)):
            ids[i].append(str(int(label)))
    return dict(zip(words, ids, strict=True))
