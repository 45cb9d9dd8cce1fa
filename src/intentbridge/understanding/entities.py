"""Entity recognition: the CRF tagger and the rule extractors, merged into one answer.

- A span the tagger labels keeps the tagger's label (it learned what this bot calls
  an ``amount``) and gets the rules' normalised value: "50 euros" tagged ``amount``
  becomes ``Money(Decimal("50"), "EUR")``, "savngs" tagged ``account`` becomes
  ``"savings"``. Which normaliser applies to which entity is learned from training
  data (``entity_kinds``: the rule kind that covers most of an entity's examples).
- A rule match the tagger did not label is kept when training data shows that kind
  of match is reliably one entity (``emit``), or when no learned entity claims that
  kind (built-in ``money``/``date``/``number``, lookup and regex names).
- Roles the tagger did not give come from cue words ("from", "into").
- With a second, neural token tagger (the accurate pipeline's
  :class:`~intentbridge.understanding.dense_tagger.DenseTokenTagger`), the CRF's
  per-token marginals and the neural tagger's probabilities are mixed (a weighted
  geometric mean, ``crf_weight`` the CRF's share) and the best BIO-consistent label
  sequence is decoded. When the CRF is sure of every token (``crf_sure``), the neural
  tagger is not run: on SNIPS and ATIS validation that changed no entity and left out
  the tagger for 4 messages in 10 (docs/nlu-accurate.md, "Parse latency").
"""

from __future__ import annotations

import dataclasses
import warnings
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from intentbridge.types import Entity
from intentbridge.understanding.clusters import WordClusters
from intentbridge.understanding.data import TrainingData
from intentbridge.understanding.extractors.base import RuleExtractors, resolve_overlaps, rule_kind
from intentbridge.understanding.extractors.roles import RoleResolver
from intentbridge.understanding.gazetteer import MIN_EXAMPLES as MIN_GAZETTEER_EXAMPLES
from intentbridge.understanding.gazetteer import Gazetteer, Phrase, span_phrase
from intentbridge.understanding.model_files import optional_float
from intentbridge.understanding.tagger import (
    CrfTagger,
    SpanAlignmentWarning,
    TaggedSpan,
    allowed_transitions,
    bio_labels,
    constrained_decode,
    decode,
    token_features,
)
from intentbridge.understanding.tokenizer import Token, tokenize

_VALUE_KINDS = ("money", "date", "number")
_MIN_KIND_COVERAGE = 0.5
_MIN_EMIT_PRECISION = 0.8
_MIN_EMIT_SUPPORT = 3  # one lucky overlap must not turn every "$5" into an object_name
_MIN_CLUSTER_EXAMPLES = 1000  # fewer messages give too few contexts to cluster words
_FLOOR = 1e-9  # probabilities below this count as this when mixing in log space
#: The CRF's marginal of its best label, on every token, at and above which the neural
#: tagger is not asked (chosen on SNIPS and ATIS validation: no entity changed at 0.995,
#: one at 0.99)
CRF_SURE = 0.995
# Keep tagged spans of an entity as they are when more than this share of its
# annotated spans have a rule match reaching past them ("a three" for "three")
_MAX_WIDENING_HARM = 0.1

ProgressFn = Callable[[int, int], None]


class TokenTagger(Protocol):
    """A second tagger whose per-token label probabilities are mixed with the CRF's."""

    labels_: list[str]

    def predict_proba(
        self, text: str, tokens: Sequence[Token], intent: str | None = None
    ) -> npt.NDArray[np.float32]:
        """``(len(tokens), len(labels_))`` probabilities; rows sum to 1."""
        ...

    def save(self, directory: Path) -> None:
        """Write the tagger to ``directory`` (read back by its class's ``load``)."""
        ...


def _natural_name(kind: str) -> str:
    return kind.partition(":")[2] or kind


def rule_tags(tokens: Sequence[Token], candidates: Sequence[Entity]) -> list[list[str]]:
    """For each token, the rule kinds matching it (``B:`` marks a match's first token).

    ``tokens`` are in text order and do not overlap, as :func:`tokenize` gives them:
    each match finds its first token by bisection, so the cost is the number of
    (match, token) pairs that overlap, not matches × tokens.
    """
    tags: list[list[str]] = [[] for _ in tokens]
    if not candidates:
        return tags
    ends = [tok.end for tok in tokens]
    n = len(tokens)
    for cand in candidates:
        kind = rule_kind(cand)
        i = bisect_right(ends, cand.start)  # the first token ending after the match starts
        first = True
        while i < n and tokens[i].start < cand.end:
            tags[i].append(("B:" if first else "") + kind)
            first = False
            i += 1
    return tags


class _Intervals:
    """Entities sorted by start, for "which of them overlap this range?" in O(log n)."""

    def __init__(self, items: Iterable[Entity]) -> None:
        self.items = sorted(items, key=lambda e: e.start)  # stable: extractors sort already
        self._starts = [e.start for e in self.items]
        # the furthest end among the items up to each one
        self._reach = list(accumulate((e.end for e in self.items), max))

    def overlaps(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` overlaps one of the items."""
        k = bisect_left(self._starts, end)  # items starting before ``end``
        return k > 0 and self._reach[k - 1] > start

    def from_overlapping(self, start: int) -> Iterator[Entity]:
        """The items from the first one ending after ``start`` on, by start."""
        for i in range(bisect_right(self._reach, start), len(self.items)):
            yield self.items[i]


class _TaggedSpans:
    """The tagger's spans (in text order, disjoint, as :func:`decode` gives them)."""

    def __init__(self, spans: Sequence[TaggedSpan]) -> None:
        self._starts = [sp.start for sp in spans]
        self._ends = [sp.end for sp in spans]

    def overlaps_other(self, start: int, end: int, own: int) -> bool:
        """Whether ``[start, end)`` overlaps a span other than the ``own``-th."""
        lo = bisect_right(self._ends, start)  # the first span ending after ``start``
        hi = bisect_left(self._starts, end)  # the first span starting at or after ``end``
        return hi - lo > 1 or (hi - lo == 1 and lo != own)


class EntityRecognizer:
    """Finds entities with the tagger (when trained) and the rule extractors."""

    def __init__(
        self,
        rules: RuleExtractors,
        tagger: CrfTagger | None = None,
        *,
        entity_kinds: dict[str, str] | None = None,
        emit: dict[str, str | None] | None = None,
        role_entities: Sequence[str] = (),
        clusters: WordClusters | None = None,
        intent_feature: bool = False,
        neural: TokenTagger | None = None,
        crf_weight: float = 0.5,
        fixed_spans: Sequence[str] = (),
        strict_spans: bool = False,
        crf_sure: float | None = CRF_SURE,
        gazetteer: Gazetteer | None = None,
    ) -> None:
        self.rules = rules
        #: Entities whose tagged spans are never widened to a rule match: in training
        #: data their matches often reached past the annotated span.
        self.fixed_spans = frozenset(fixed_spans)
        #: Never widen a tagged span into another one (the accurate pipeline's choice).
        self.strict_spans = strict_spans
        self.tagger = tagger
        self.neural: TokenTagger | None = None
        self.crf_weight = crf_weight
        self.crf_sure = crf_sure
        self._mix: _Mix | None = None
        self.set_neural(neural, crf_weight, crf_sure)
        self.entity_kinds = dict(entity_kinds or {})
        self.emit = dict(emit or {})
        self.roles = RoleResolver(role_entities)
        self.clusters: WordClusters = dict(clusters or {})
        self.intent_feature = intent_feature
        self.gazetteer = gazetteer or Gazetteer()

    def set_neural(
        self,
        neural: TokenTagger | None,
        crf_weight: float = 0.5,
        crf_sure: float | None = CRF_SURE,
    ) -> None:
        """Mix ``neural``'s probabilities with the CRF's marginals (``None``: CRF only).

        ``crf_weight`` is the CRF's share (0: the neural tagger alone, still decoded
        with BIO constraints). Without a CRF, the neural tagger is not used. When the
        CRF's best label has a marginal of at least ``crf_sure`` on every token of a
        message, the CRF's marginals alone are decoded (``None``: always mix).
        """
        self.neural, self.crf_weight, self.crf_sure, self._mix = neural, crf_weight, crf_sure, None
        if neural is not None and self.tagger is not None:
            self._mix = _Mix.build(self.tagger, neural, crf_weight, crf_sure)

    @classmethod
    def from_config(
        cls,
        rules: RuleExtractors,
        tagger: CrfTagger | None,
        config: dict[str, Any],
        neural: TokenTagger | None = None,
    ) -> EntityRecognizer:
        """Rebuild a recognizer from its :meth:`config` (and the separately saved parts)."""
        return cls(
            rules,
            tagger,
            entity_kinds=config["entity_kinds"],
            emit=config["emit"],
            role_entities=config["role_entities"],
            clusters=config.get("clusters"),
            intent_feature=bool(config.get("intent_feature", False)),
            neural=neural,
            crf_weight=float(config.get("crf_weight", 0.5)),
            fixed_spans=config.get("fixed_spans", ()),
            strict_spans=bool(config.get("strict_spans", False)),
            # models saved before it always mixed
            crf_sure=optional_float(config.get("crf_sure")),
            # models saved before it have none: their CRF never saw its features
            gazetteer=Gazetteer.from_json(config.get("gazetteer")),
        )

    @classmethod
    def train(
        cls,
        data: TrainingData,
        *,
        rules: RuleExtractors,
        crf_params: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        clusters: bool | None = None,
        intent_feature: bool = True,
        learn_fixed_spans: bool = True,
        crf_time_budget_s: float | None = None,
        gazetteer: bool | None = None,
    ) -> EntityRecognizer:
        """Learn the tagger (if any example has entities) and the merge policy.

        ``clusters``: learn word clusters from the training texts as tagger features
        (default: when there are at least ``_MIN_CLUSTER_EXAMPLES`` examples).
        ``intent_feature``: give the tagger the (gold) intent of each example; parsing
        then passes the predicted intent. ``crf_time_budget_s``: seconds the CRF's
        training should end within (see :meth:`CrfTagger.fit`).
        ``learn_fixed_spans``: learn which entities' tagged spans must not be widened
        to a rule match (:attr:`fixed_spans`), and never widen a tagged span into
        another (:attr:`strict_spans`). Both pipelines do since 2026-11-26 (`fast`:
        entity F1 SNIPS +0.45, ATIS +0.3, SGD +2.8 on validation; docs/nlu.md);
        ``False`` widens every tagged span to an overlapping rule match, as before.
        ``gazetteer``: give the tagger the annotated values of the training data as
        features (:mod:`.gazetteer`, leave-one-out in training; 2026-11-26, `fast`
        on validation: entity F1 SNIPS +0.9, ATIS +0.1, SGD +0.0; docs/nlu.md);
        default: when there are at least :data:`.gazetteer.MIN_EXAMPLES` examples.
        """
        learned = set(data.entity_names)
        if clusters is None:
            clusters = len(data.examples) >= _MIN_CLUSTER_EXAMPLES
        word_clusters: WordClusters = {}
        if clusters and learned:
            from intentbridge.understanding.clusters import learn_word_clusters

            word_clusters = learn_word_clusters([ex.text for ex in data.examples])
        use_intent = intent_feature and len({ex.intent for ex in data.examples}) > 1
        tokenized: list[list[Token]] = []
        annotated: list[list[tuple[Phrase, str]]] = []
        if learned:  # data without entities has no tagger to train
            tokenized = [tokenize(ex.text) for ex in data.examples]
            annotated = [
                [(span_phrase(tokens, sp.start, sp.end), sp.label) for sp in ex.entities]
                for ex, tokens in zip(data.examples, tokenized, strict=True)
            ]
        if gazetteer is None:
            gazetteer = len(data.examples) >= MIN_GAZETTEER_EXAMPLES
        seen = Gazetteer.learn(annotated) if gazetteer else Gazetteer()
        features: list[list[list[str]]] = []
        labels: list[list[str]] = []
        kind_hits: dict[str, Counter[str]] = defaultdict(Counter)
        kind_total: Counter[str] = Counter()
        coverage: dict[str, Counter[str]] = defaultdict(Counter)
        entity_total: Counter[str] = Counter()
        role_entities: set[str] = set()
        overlaps: dict[str, Counter[str]] = defaultdict(Counter)
        reaching_past: dict[str, Counter[str]] = defaultdict(Counter)
        misaligned: list[tuple[str, int, int, str]] = []
        for n, ex in enumerate(data.examples):
            candidates = rules.extract(ex.text)
            for cand in resolve_overlaps(candidates):
                kind = rule_kind(cand)
                kind_total[kind] += 1
                for sp in ex.entities:
                    if sp.start < cand.end and sp.end > cand.start:
                        kind_hits[kind][sp.entity] += 1
                        break
            for sp in ex.entities:
                entity_total[sp.entity] += 1
                if sp.role is not None:
                    role_entities.add(sp.entity)
                touching = [c for c in candidates if c.start < sp.end and c.end > sp.start]
                for kind in {rule_kind(c) for c in touching}:
                    coverage[sp.entity][kind] += 1
                for extractor in {c.extractor for c in touching}:
                    overlaps[sp.entity][extractor] += 1
                for extractor in {
                    c.extractor for c in touching if c.start < sp.start or c.end > sp.end
                }:
                    reaching_past[sp.entity][extractor] += 1
            if learned:
                tokens = tokenized[n]
                words = [t.text.lower() for t in tokens]
                features.append(
                    token_features(
                        tokens,
                        rule_tags(tokens, candidates),
                        intent=ex.intent if use_intent else None,
                        clusters=word_clusters,
                        # leave-one-out: the example's own values are not "seen"
                        seen=seen.tags(words, without=annotated[n]) if seen else None,
                    )
                )
                found: list[tuple[int, int, str]] = []
                spans = [(s.start, s.end, s.label) for s in ex.entities]
                labels.append(bio_labels(tokens, spans, misaligned=found))
                misaligned.extend((ex.text, *span) for span in found)
        if misaligned:
            _warn_misaligned(misaligned)
        entity_kinds: dict[str, str] = {}
        for entity, total in entity_total.items():
            # money before date before number: "50 euros" also contains a number
            for kind in _VALUE_KINDS:
                if coverage[entity][kind] >= _MIN_KIND_COVERAGE * total:
                    entity_kinds[entity] = kind
                    break
        fixed_spans = sorted(
            entity
            for entity, kind in entity_kinds.items()
            if learn_fixed_spans
            and reaching_past[entity][kind] > _MAX_WIDENING_HARM * overlaps[entity][kind]
        )
        claimed = set(entity_kinds.values())
        emit: dict[str, str | None] = {}
        for kind in {*kind_total, *_VALUE_KINDS, *_rule_kinds(rules)}:
            hits = kind_hits.get(kind, Counter())
            best = hits.most_common(1)
            natural = _natural_name(kind)
            if (
                best
                and kind_total[kind] >= _MIN_EMIT_SUPPORT
                and best[0][1] / kind_total[kind] >= _MIN_EMIT_PRECISION
            ):
                emit[kind] = best[0][0]
            elif (
                natural not in learned
                and kind not in claimed
                and (kind not in kind_total or not hits)
            ):
                emit[kind] = natural
            else:
                emit[kind] = None
        tagger = None
        if learned:
            tagger = CrfTagger(**(crf_params or {})).fit(
                features, labels, progress=progress, time_budget_s=crf_time_budget_s
            )
        # roles come from cue words for annotated-role entities, and for lookup
        # entities (accounts, cards) when the data annotates no roles at all
        if not role_entities:
            role_entities = set(rules.lookup.entities)
        return cls(
            rules,
            tagger,
            entity_kinds=entity_kinds,
            emit=emit,
            role_entities=sorted(role_entities),
            clusters=word_clusters,
            intent_feature=use_intent,
            fixed_spans=fixed_spans,
            strict_spans=learn_fixed_spans,
            gazetteer=seen,
        )

    def extract(
        self, text: str, intent: str | None = None, *, learned: bool = True
    ) -> tuple[Entity, ...]:
        """Entities in ``text``, non-overlapping, sorted by start.

        ``intent`` is the predicted intent (used when the tagger was trained with it).
        ``learned=False`` leaves the taggers out: only the rule extractors' matches.
        """
        candidates = self.rules.extract(text)
        out: list[Entity] = []
        if self.tagger is not None and learned:
            tokens = tokenize(text)
            features = token_features(
                tokens,
                rule_tags(tokens, candidates),
                intent=intent if self.intent_feature else None,
                clusters=self.clusters,
                seen=self.gazetteer.tags([t.text.lower() for t in tokens])
                if self.gazetteer
                else None,
            )
            if self._mix is None:
                labels, probs = self.tagger.tag(features)
            else:
                labels, probs = self._mix.labels(text, tokens, features, intent)
            spans = decode(tokens, labels, probs)
            by_kind = _by_kind(candidates)
            others = _TaggedSpans(spans) if self.strict_spans else None
            for i, span in enumerate(spans):
                out.append(self._from_tagged(text, span, by_kind, others, i))
        covered = _Intervals(out)
        free = [c for c in candidates if not covered.overlaps(c.start, c.end)]
        for cand in resolve_overlaps(free):
            name = self.emit.get(rule_kind(cand), _default_emit(cand))
            if name is not None:
                out.append(dataclasses.replace(cand, entity=name) if name != cand.entity else cand)
        out.sort(key=lambda e: e.start)
        return tuple(self.roles.resolve(text, out))

    def _from_tagged(
        self,
        text: str,
        tagged: TaggedSpan,
        by_kind: Mapping[str, _Intervals],
        others: _TaggedSpans | None = None,
        own: int = -1,
    ) -> Entity:
        # ``others``: the tagger's spans, this one the ``own``-th, that a rule match
        # must not reach into (:attr:`strict_spans`)
        start, end, entity = tagged.start, tagged.end, tagged.entity
        role, confidence = tagged.role, tagged.confidence
        kind = self.entity_kinds.get(entity)
        matches = by_kind.get(kind) if kind is not None else None
        if kind is not None and matches is not None:
            # widen to the rule match ("50" tagged, "50 euros" matched) so the value
            # keeps its currency, and take the rule's value when spans agree; not for
            # entities whose matches reach past annotated spans ("a three" for "three")
            for cand in matches.from_overlapping(start):
                if cand.start >= end:
                    break  # sorted by start: no later match reaches the span either
                if cand.end <= start:
                    continue
                if entity in self.fixed_spans and (cand.start < start or cand.end > end):
                    continue
                if others is not None and others.overlaps_other(cand.start, cand.end, own):
                    continue  # "next" tagged apart: "thursday" stays "thursday"
                start, end = min(start, cand.start), max(end, cand.end)
                if (cand.start, cand.end) == (start, end):
                    return Entity(
                        entity,
                        cand.value,
                        start,
                        end,
                        text[start:end],
                        role,
                        confidence,
                        "crf+" + kind,
                    )
        span = text[start:end]
        value = self.rules.normalise(entity, span, kind)
        return Entity(entity, value, start, end, span, role, confidence, "crf")

    def config(self) -> dict[str, Any]:
        """JSON-serialisable merge policy (the tagger and rules are saved apart)."""
        return {
            "entity_kinds": self.entity_kinds,
            "emit": self.emit,
            "role_entities": sorted(self.roles.entities),
            "clusters": self.clusters,
            "intent_feature": self.intent_feature,
            "crf_weight": self.crf_weight,
            "crf_sure": self.crf_sure,
            "fixed_spans": sorted(self.fixed_spans),
            "strict_spans": self.strict_spans,
            "gazetteer": self.gazetteer.to_json(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class _Mix:
    """The CRF's marginals and a neural tagger's probabilities, mixed, then decoded."""

    crf: CrfTagger
    neural: TokenTagger
    crf_weight: float
    crf_sure: float | None  # the CRF alone when sure of every token (None: always mix)
    names: list[str]  # the neural tagger's labels: the columns of the mix
    shared: list[int]  # the mix's columns of the labels the CRF knows too
    crf_columns: list[int]  # and the CRF's columns of the same labels
    allowed: npt.NDArray[np.bool_]

    @classmethod
    def build(
        cls, crf: CrfTagger, neural: TokenTagger, crf_weight: float, crf_sure: float | None
    ) -> _Mix:
        names = list(neural.labels_)
        index = {y: i for i, y in enumerate(crf.labels)}
        shared = [j for j, y in enumerate(names) if y in index]
        crf_columns = [index[names[j]] for j in shared]
        allowed = allowed_transitions(names)
        return cls(crf, neural, crf_weight, crf_sure, names, shared, crf_columns, allowed)

    def labels(
        self, text: str, tokens: list[Token], features: list[list[str]], intent: str | None
    ) -> tuple[list[str], list[float]]:
        """The best BIO-consistent labels under the mix, and each token's probability."""
        if self.crf_weight <= 0:
            probs = self.neural.predict_proba(text, tokens, intent).astype(np.float64)
            return constrained_decode(probs, self.names, self.allowed)
        crf = self.crf.marginals(features)
        aligned = np.zeros((len(tokens), len(self.names)))
        aligned[:, self.shared] = crf[:, self.crf_columns]
        if self.crf_sure is not None and bool((crf.max(axis=1) >= self.crf_sure).all()):
            # the tagger could only overrule a label the CRF gives 0.995 by being
            # surer still of another; on validation it never did
            return constrained_decode(aligned, self.names, self.allowed)
        probs = self.neural.predict_proba(text, tokens, intent).astype(np.float64)
        # A weighted geometric mean: on validation it beat the arithmetic one and
        # was less sensitive to the weight (docs/nlu-accurate.md, "Entities").
        logp = self.crf_weight * np.log(np.clip(aligned, _FLOOR, None))
        logp += (1.0 - self.crf_weight) * np.log(np.clip(probs, _FLOOR, None))
        probs = np.exp(logp - logp.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return constrained_decode(probs, self.names, self.allowed)


def _by_kind(candidates: Sequence[Entity]) -> dict[str, _Intervals]:
    """The rule matches per extractor (a tagged span widens to its entity's kind)."""
    groups: dict[str, list[Entity]] = defaultdict(list)
    for cand in candidates:
        groups[cand.extractor].append(cand)
    return {kind: _Intervals(group) for kind, group in groups.items()}


def _warn_misaligned(misaligned: Sequence[tuple[str, int, int, str]]) -> None:
    text, start, end, label = misaligned[0]
    tokens = [t.text for t in tokenize(text) if t.start < end and t.end > start]
    learned = f"is learned as the token(s) {tokens!r}" if tokens else "covers no token"
    more = f" ({len(misaligned) - 1} more span(s) like it)" if len(misaligned) > 1 else ""
    warnings.warn(
        SpanAlignmentWarning(
            f"entity span {label!r} {start}:{end} ({text[start:end]!r}) in {text!r} does "
            f"not begin and end at token boundaries and {learned}{more}; annotate "
            "whole words (check the offsets)"
        ),
        stacklevel=2,
    )


def _rule_kinds(rules: RuleExtractors) -> set[str]:
    kinds = {f"lookup:{e}" for e in rules.lookup.entities}
    kinds |= {f"regex:{n}" for n in rules.regex.names}
    return kinds


def _default_emit(cand: Entity) -> str | None:
    # kinds unseen at training time (e.g. a regex added later) keep their own name
    return cand.entity
