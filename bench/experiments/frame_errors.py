"""Where a model's frames go wrong on a validation split, and what training said.

    python bench/experiments/frame_errors.py MODEL_DIR SET [PREFIX_WORDS]

Every wrong frame (intent or entity set unlike gold) is put in one class — ``intent``
(wrong intent), ``label`` (every span right, a label wrong), ``extra`` / ``missing``
(the gold spans plus / minus some), ``boundary`` (anything else) — and printed with,
for each span that differs, how the training split annotated the same words (label ->
count, lower-cased tokens) and, for a wrong intent, the intents of the training
messages that begin with the same PREFIX_WORDS words (default 4). Ends with the count
per class. Round 10 (docs/nlu-accurate.md) read SNIPS's errors from it. Validation
only; no test set is read.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.gazetteer import Gazetteer, span_phrase
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.tokenizer import tokenize

DATA = Path(os.environ.get("INTENTBRIDGE_DATA", "/work/shared/data"))

Span = tuple[int, int, str]


def category(intent_ok: bool, gold: set[Span], pred: set[Span]) -> str:
    """The class of a wrong frame (see the module docstring)."""
    if not intent_ok:
        return "intent"
    gold_at, pred_at = {s[:2] for s in gold}, {s[:2] for s in pred}
    if gold_at == pred_at:
        return "label"
    if gold_at < pred_at:
        return "extra"
    if pred_at < gold_at:
        return "missing"
    return "boundary"


def main(model_dir: str, name: str, prefix_words: int) -> None:
    model = NluModel.load(model_dir)
    train = load_training_data(DATA / name / "train.jsonl").examples
    valid = load_training_data(DATA / name / "validation.jsonl").examples
    annotated = []
    for ex in train:
        tokens = tokenize(ex.text)
        annotated.append([(span_phrase(tokens, sp.start, sp.end), sp.label) for sp in ex.entities])
    seen = Gazetteer.learn(annotated)
    openings: dict[tuple[str, ...], Counter[str]] = {}
    for ex in train:
        key = tuple(ex.text.lower().split()[:prefix_words])
        openings.setdefault(key, Counter())[ex.intent] += 1

    def in_training(text: str, start: int, end: int) -> str:
        phrase = span_phrase(tokenize(text), start, end)
        return f"{' '.join(phrase)!r}: {seen.phrases.get(phrase, {})}"

    classes: Counter[str] = Counter()
    for ex in valid:
        parsed = model.parse(ex.text)
        gold = {(sp.start, sp.end, sp.label) for sp in ex.entities}
        pred = {
            (e.start, e.end, f"{e.entity}#{e.role}" if e.role else e.entity)
            for e in parsed.entities
        }
        intent_ok = parsed.intent == ex.intent
        if intent_ok and gold == pred:
            continue
        kind = category(intent_ok, gold, pred)
        classes[kind] += 1
        print(f"[{kind}] {ex.text}")
        if not intent_ok:
            key = tuple(ex.text.lower().split()[:prefix_words])
            print(
                f"    intent {ex.intent} -> {parsed.intent}; training messages opening "
                f"{' '.join(key)!r}: {dict(openings.get(key, Counter()))}"
            )
        for label, spans in (("gold", gold - pred), ("predicted", pred - gold)):
            for start, end, entity in sorted(spans):
                print(f"    {label} {entity} {in_training(ex.text, start, end)}")
    print(f"{sum(classes.values())} wrong frames of {len(valid)}: {dict(classes.most_common())}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 4)
