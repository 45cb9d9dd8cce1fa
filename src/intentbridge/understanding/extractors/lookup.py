"""Lookup tables with synonyms and fuzzy matching ("savngs" → "savings").

Phrases are the lookup values plus every synonym variant whose canonical value is in
the table. Matching is exact (case-insensitive, on token boundaries, longest first)
and then fuzzy with rapidfuzz for words of at least ``min_fuzzy_length`` characters.
Words the training examples use elsewhere (``known_words``) are never fuzzy-matched:
"saving" in "I am saving up" is a word, not a typo of "savings".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from intentbridge.types import Entity
from intentbridge.understanding.tokenizer import Token, tokenize


@dataclass(frozen=True, slots=True)
class _Phrase:
    entity: str
    canonical: str


class LookupExtractor:
    """Finds lookup-table values and their synonyms, exactly or fuzzily.

    >>> x = LookupExtractor({"account": ["checking", "savings"]}, {"savings account": "savings"})
    >>> [(e.entity, e.value) for e in x.extract("move it to my savngs")]
    [('account', 'savings')]
    """

    name = "lookup"

    def __init__(
        self,
        tables: Mapping[str, Sequence[str]],
        synonyms: Mapping[str, str] | None = None,
        *,
        fuzzy_threshold: float = 85.0,
        min_fuzzy_length: int = 4,
        known_words: Collection[str] = (),
    ) -> None:
        self.fuzzy_threshold = fuzzy_threshold
        self.min_fuzzy_length = min_fuzzy_length
        self._phrases: dict[str, _Phrase] = {}
        canonical_entity: dict[str, str] = {}
        for entity, values in tables.items():
            for value in values:
                self._phrases.setdefault(value.lower(), _Phrase(entity, value))
                canonical_entity.setdefault(value.lower(), entity)
        for variant, canonical in (synonyms or {}).items():
            owner = canonical_entity.get(canonical.lower())
            if owner is not None:
                self._phrases.setdefault(variant.lower(), _Phrase(owner, canonical))
        self._max_tokens = max((len(tokenize(p)) for p in self._phrases), default=0)
        self._choices = list(self._phrases)
        phrase_words = {t.text.lower() for p in self._phrases for t in tokenize(p)}
        self._known = {w.lower() for w in known_words} - phrase_words

    @property
    def entities(self) -> set[str]:
        """The entity names the tables cover."""
        return {p.entity for p in self._phrases.values()}

    def extract(self, text: str) -> list[Entity]:
        """Lookup matches in ``text``: exact first, then fuzzy, never overlapping."""
        if not self._phrases:
            return []
        tokens = tokenize(text)
        taken = [False] * len(tokens)
        found: list[Entity] = []
        for fuzzy in (False, True):
            i = 0
            while i < len(tokens):
                match = None if taken[i] else self._match_at(text, tokens, taken, i, fuzzy=fuzzy)
                if match is None:
                    i += 1
                    continue
                entity, n = match
                found.append(entity)
                for k in range(i, i + n):
                    taken[k] = True
                i += n
        return sorted(found, key=lambda e: e.start)

    def _match_at(
        self, text: str, tokens: list[Token], taken: list[bool], i: int, *, fuzzy: bool
    ) -> tuple[Entity, int] | None:
        for n in range(min(self._max_tokens, len(tokens) - i), 0, -1):
            if any(taken[i : i + n]):
                continue
            start, end = tokens[i].start, tokens[i + n - 1].end
            span = text[start:end]
            key = span.lower()
            if not fuzzy:
                phrase = self._phrases.get(key)
                if phrase is not None:
                    return self._entity(phrase, (start, end, span), 1.0, "lookup"), n
                continue
            window = [t.text.lower() for t in tokens[i : i + n]]
            if len(key) < self.min_fuzzy_length or not any(
                w not in self._known and w.isalpha() for w in window
            ):
                continue
            best = process.extractOne(
                key, self._choices, scorer=fuzz.ratio, score_cutoff=self.fuzzy_threshold
            )
            if best is not None:
                phrase = self._phrases[best[0]]
                return self._entity(phrase, (start, end, span), best[1] / 100.0, "fuzzy"), n
        return None

    @staticmethod
    def _entity(phrase: _Phrase, where: tuple[int, int, str], score: float, how: str) -> Entity:
        start, end, span = where
        return Entity(
            entity=phrase.entity,
            value=phrase.canonical,
            start=start,
            end=end,
            text=span,
            confidence=score,
            extractor=how,
        )

    def normalise(self, entity: str, text: str) -> str | None:
        """The canonical value for a span another component labelled ``entity``.

        Exact (case-insensitive) first, then fuzzy among that entity's phrases.
        """
        key = text.strip().lower()
        phrase = self._phrases.get(key)
        if phrase is not None and phrase.entity == entity:
            return phrase.canonical
        if len(key) < self.min_fuzzy_length:
            return None
        choices = [p for p, ph in self._phrases.items() if ph.entity == entity]
        best = process.extractOne(
            key, choices, scorer=fuzz.ratio, score_cutoff=self.fuzzy_threshold
        )
        return self._phrases[best[0]].canonical if best is not None else None
