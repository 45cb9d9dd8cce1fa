"""Where a `fast` model's parse spends its time, measured inside whole parses.

    python bench/experiments/fast_parse_parts.py MODEL_DIR SET

Parses the first 500 validation messages five times, timing each part as a parse
runs it (run alone, parts are faster: they keep the CPU caches to themselves), and
prints each part's median; then the whole parse with the static word-piece vectors
left out of intent scoring, and the CRF's tagging with its features cut to the
attributes whose largest weight passes a threshold (time, and the share of label
sequences that stay the same). Round 10 (docs/nlu-accurate.md). Validation only.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from intentbridge.understanding import entities as ent
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.tagger import decode, token_features
from intentbridge.understanding.tokenizer import tokenize

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))
PARTS = (
    "intent",
    "knows",
    "rules",
    "tokens+rule tags+gazetteer",
    "CRF features",
    "CRF tag+marginal",
    "decode+merge+roles",
)


def median_ms(fn: Callable[[str], Any], texts: list[str], rounds: int = 5) -> float:
    """The quietest of ``rounds`` passes' median milliseconds of ``fn(text)``."""
    best = float("inf")
    for _ in range(rounds):
        times = []
        for text in texts:
            start = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - start)
        best = min(best, statistics.median(times) * 1000)
    return best


def parts_of_parses(model: NluModel, texts: list[str]) -> dict[str, float]:
    """Median milliseconds of each part, timed inside parses (no role or rule-only path)."""
    rec = model.entities
    spent: dict[str, list[float]] = defaultdict(list)
    for _ in range(5):
        for text in texts:
            marks = [time.perf_counter()]
            probs = model.intent_probabilities([text])[0]
            marks.append(time.perf_counter())
            model.knows_anything_in(text)
            marks.append(time.perf_counter())
            candidates = rec.rules.extract(text)
            marks.append(time.perf_counter())
            tokens = tokenize(text)
            words = [t.text.lower() for t in tokens]
            tags = ent.rule_tags(tokens, candidates)
            seen = rec.gazetteer.tags(words) if rec.gazetteer else None
            marks.append(time.perf_counter())
            features = token_features(tokens, tags, clusters=rec.clusters, seen=seen)
            marks.append(time.perf_counter())
            assert rec.tagger is not None
            labels, confidences = rec.tagger.tag(features)
            marks.append(time.perf_counter())
            spans = decode(tokens, labels, confidences)
            by_kind = ent._by_kind(candidates)
            others = ent._TaggedSpans(spans) if rec.strict_spans else None
            found = [rec._from_tagged(text, s, by_kind, others, i) for i, s in enumerate(spans)]
            rec.roles.resolve(text, found)
            np.argsort(-probs)[:10]
            marks.append(time.perf_counter())
            for name, a, b in zip(PARTS, marks[:-1], marks[1:], strict=True):
                spent[name].append(b - a)
            spent["all of the above"].append(marks[-1] - marks[0])
    return {name: statistics.median(v) * 1000 for name, v in spent.items()}


def main(model_dir: str, name: str) -> None:
    model = NluModel.load(model_dir)
    texts = [
        json.loads(line)["text"]
        for line in (DATA / name / "validation.jsonl").read_text("utf-8").splitlines()[:500]
    ]
    print(json.dumps({"parse p50 ms": round(median_ms(model.parse, texts), 4)}))
    for part, ms in parts_of_parses(model, texts).items():
        print(json.dumps({"part": part, "median ms": round(ms, 4)}))
    sparse: Any = model.intent_models[0]
    static = getattr(sparse, "static_coef_t", None)
    if static is not None:
        sparse.static_coef_t = None
        ms = median_ms(model.parse, texts)
        sparse.static_coef_t = static
        print(json.dumps({"parse p50 ms without static vectors": round(ms, 4)}))
    rec = model.entities
    assert rec.tagger is not None
    assert rec.tagger._tagger is not None
    crf = rec.tagger._tagger
    largest: dict[str, float] = defaultdict(float)
    for (attribute, _label), weight in crf.info().state_features.items():
        largest[attribute] = max(largest[attribute], abs(weight))
    features = {}
    for text in texts:
        tokens = tokenize(text)
        tags = ent.rule_tags(tokens, rec.rules.extract(text))
        seen = rec.gazetteer.tags([t.text.lower() for t in tokens]) if rec.gazetteer else None
        features[text] = token_features(tokens, tags, clusters=rec.clusters, seen=seen)
    full = {text: crf.tag(f) for text, f in features.items()}
    for cut in (0.0, 0.01, 0.05, 0.1):
        kept = {a for a, w in largest.items() if w > cut}
        pruned = {t: [[a for a in tok if a in kept] for tok in f] for t, f in features.items()}

        def tag_pruned(text: str, pruned: dict[str, list[list[str]]] = pruned) -> Any:
            return crf.tag(pruned[text])

        same = sum(crf.tag(pruned[t]) == full[t] for t in texts) / len(texts)
        row = {
            "CRF attributes kept": len(kept),
            "of": len(largest),
            "tag p50 ms": round(median_ms(tag_pruned, texts), 4),
            "unpruned tag p50 ms": round(median_ms(lambda t: crf.tag(features[t]), texts), 4),
            "same label sequences": round(same, 3),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
