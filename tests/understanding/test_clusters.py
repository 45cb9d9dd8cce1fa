"""Word clusters learned from training texts (entity tagger features)."""

from __future__ import annotations

import random

import numpy as np

from intentbridge.understanding.calibration import choose_threshold
from intentbridge.understanding.clusters import learn_word_clusters

ARTISTS = [f"artist{i}" for i in range(12)]
SERVICES = [f"service{i}" for i in range(12)]
CITIES = [f"city{i}" for i in range(12)]


def _texts() -> list[str]:
    rng = random.Random(0)
    out = []
    for _ in range(600):
        a, s, c = rng.choice(ARTISTS), rng.choice(SERVICES), rng.choice(CITIES)
        out.append(
            rng.choice(
                [
                    f"play {a} on {s}",
                    f"play some {a} on {s} please",
                    f"what is the weather in {c} today",
                    f"weather for {c} tomorrow",
                ]
            )
        )
    return out


def test_words_in_the_same_contexts_share_clusters() -> None:
    clusters = learn_word_clusters(_texts(), sizes=(3, 6), dims=6)
    coarse = {w: ids[0] for w, ids in clusters.items()}
    # each group mostly in one coarse cluster, and the groups apart
    majority = {
        name: max(set(ids), key=ids.count)
        for name, ids in {
            "artists": [coarse[w] for w in ARTISTS],
            "services": [coarse[w] for w in SERVICES],
            "cities": [coarse[w] for w in CITIES],
        }.items()
    }
    assert len(set(majority.values())) == 3
    assert sum(coarse[w] == majority["artists"] for w in ARTISTS) >= 10


def test_tiny_data_gets_no_clusters() -> None:
    assert learn_word_clusters(["hello there", "hi there"]) == {}


def test_threshold_without_oos_rejects_few_right_answers() -> None:
    # half the messages are ambiguous (right 30% of the time at confidence 0.4): the
    # utility alone would reject them all; the cap keeps 98% of right answers
    rng = np.random.default_rng(0)
    n = 1000
    gold = rng.integers(0, 3, n)
    ambiguous = np.arange(n) < n // 2
    right = np.where(ambiguous, rng.random(n) < 0.3, rng.random(n) < 0.95)
    pred = np.where(right, gold, (gold + 1) % 3)
    conf = np.where(ambiguous, 0.4, 0.9) + rng.normal(0, 0.01, n)
    probs = np.repeat(((1 - conf) / 2)[:, None], 3, axis=1)
    probs[np.arange(n), pred] = conf
    t = choose_threshold(probs, gold)
    assert t < 0.4
    uncapped = choose_threshold(probs, gold, max_right_rejected=1.0)
    assert uncapped > 0.4
