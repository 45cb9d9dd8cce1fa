"""Entity values seen in training, as features for the entity tagger.

SNIPS asks whether "emilie autumn" is an ``artist`` or an ``entity_name`` and whether
"the happy blues" is an ``album`` or a ``track``: the words around them rarely tell, but
the training data often holds the same value, annotated. The gazetteer is every
annotated value (as lower-cased tokens) with how often each label was given to it; a
token inside such a phrase in a message gets the features ``g=B:label`` / ``g=I:label``.

Training must not see its own answers: a feature that fires on every annotated span
of the training data would teach the tagger to trust it blindly, and at parse time it
fires only on values seen before. So each training example's features come from the
gazetteer *without that example's own annotations* (leave-one-out): a value annotated
once in training is, for its own example, a value never seen, as a new one will be.

>>> gaz = Gazetteer.learn(examples)
>>> gaz.tags(["play", "emilie", "autumn"])
[[], ['g=B:artist'], ['g=I:artist']]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intentbridge.understanding.tokenizer import Token

Phrase = tuple[str, ...]

MAX_PHRASE_TOKENS = 8
"""Longer annotated values are left out: they rarely repeat, and each token of a
message is looked up once per length."""

MIN_EXAMPLES = 1000
"""Data with fewer examples gets no gazetteer, in either tagger: small bot data repeats
a few values across template-made examples, and a tagger then learns a span from the
memory of its value rather than from its context (the bank set's
"[on monday](date)" taught the CRF "on" only where "on monday" was a seen value, and
"on friday" lost its "on")."""

MIN_SHARE = 0.2
"""A label given to a value in less than this share of its annotations is not a
feature of it (one stray annotation must not speak for a value seen 20 times)."""


def span_phrase(tokens: Sequence[Token], start: int, end: int) -> Phrase:
    """The lower-cased tokens inside ``[start, end)``."""
    return tuple(t.text.lower() for t in tokens if t.start >= start and t.end <= end)


def bio_phrases(tokens: Sequence[Token], labels: Sequence[str]) -> list[tuple[Phrase, str]]:
    """The (phrase, label) pairs of a BIO-labelled token sequence (``I-x`` may open a span)."""
    out: list[tuple[Phrase, str]] = []
    words: list[str] = []
    current: str | None = None
    for token, y in zip(tokens, labels, strict=True):
        inside = y.startswith("I-") and y[2:] == current
        if current is not None and not inside:
            out.append((tuple(words), current))
            current, words = None, []
        if y != "O" and not inside:
            current, words = y[2:], []
        if current is not None:
            words.append(token.text.lower())
    if current is not None:
        out.append((tuple(words), current))
    return out


@dataclass(slots=True)
class Gazetteer:
    """Annotated values (lower-cased token tuples) -> label -> how often."""

    phrases: dict[Phrase, dict[str, int]] = field(default_factory=dict)
    #: every proper prefix of a phrase: a lookup stops at the first word no phrase goes on with
    _prefixes: set[Phrase] = field(init=False, repr=False, compare=False)
    #: each phrase's features when nothing is left out (parsing), derived once
    _features: dict[Phrase, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._prefixes = {p[:k] for p in self.phrases for k in range(1, len(p))}
        self._features = {p: tuple(self._labels(p, c, {})) for p, c in self.phrases.items()}

    @classmethod
    def learn(cls, annotated: Iterable[Iterable[tuple[Phrase, str]]]) -> Gazetteer:
        """Count each example's (phrase, label) pairs; ``annotated`` yields one list per example."""
        counts: dict[Phrase, Counter[str]] = defaultdict(Counter)
        for pairs in annotated:
            for phrase, label in pairs:
                if 0 < len(phrase) <= MAX_PHRASE_TOKENS:
                    counts[phrase][label] += 1
        return cls({p: dict(c) for p, c in counts.items()})

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def tags(
        self, words: Sequence[str], without: Sequence[tuple[Phrase, str]] = ()
    ) -> list[list[str]]:
        """For each (lower-cased) word, the ``g=B:label`` / ``g=I:label`` features.

        ``without``: (phrase, label) annotations to leave out of the counts, the
        example's own when training (leave-one-out).
        """
        tags: list[list[str]] = [[] for _ in words]
        if not self.phrases:
            return tags
        own = Counter(without)
        n = len(words)
        for i in range(n):
            for end in range(i + 1, min(i + MAX_PHRASE_TOKENS, n) + 1):
                phrase = tuple(words[i:end])
                labels = self.phrases.get(phrase)
                if labels is not None:
                    found = self._labels(phrase, labels, own) if own else self._features[phrase]
                    for label in found:
                        tags[i].append("g=B:" + label)
                        for j in range(i + 1, end):
                            tags[j].append("g=I:" + label)
                if phrase not in self._prefixes:
                    break
        return tags

    @staticmethod
    def _labels(
        phrase: Phrase, labels: Mapping[str, int], own: Mapping[tuple[Phrase, str], int]
    ) -> list[str]:
        counts = {y: c - own.get((phrase, y), 0) for y, c in labels.items()}
        total = sum(counts.values())
        if total <= 0:
            return []
        return sorted(y for y, c in counts.items() if c > 0 and c >= MIN_SHARE * total)

    def tag_names(self) -> list[str]:
        """Every feature :meth:`tags` can give, sorted."""
        labels = sorted({y for counts in self.phrases.values() for y in counts})
        return [f"g={p}:{y}" for y in labels for p in ("B", "I")]

    def to_json(self) -> list[list[Any]]:
        """``[[tokens, {label: count}], ...]``, sorted, for ``rules.json``."""
        return [[list(p), dict(sorted(c.items()))] for p, c in sorted(self.phrases.items())]

    @classmethod
    def from_json(cls, data: Sequence[Sequence[Any]] | None) -> Gazetteer:
        """Read :meth:`to_json`'s form (``None``: a model saved before, no gazetteer)."""
        if not data:
            return cls()
        return cls(
            {
                tuple(str(word) for word in phrase): {str(y): int(n) for y, n in counts.items()}
                for phrase, counts in data
            }
        )
