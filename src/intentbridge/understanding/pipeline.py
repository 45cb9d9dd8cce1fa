"""Named pipelines and the intent model kinds they are built from.

A pipeline is a list of intent model kinds whose probabilities are averaged (with
weights fitted on held-out data) plus the shared entity stack (CRF tagger and rule
extractors). ``fast`` uses the sparse TF-IDF model; ``accurate`` adds the dense
embedding model from :mod:`intentbridge.understanding.dense`, an optional extra.

>>> register_intent_model("mine", lambda: MyIntentModel)
>>> register_pipeline("custom", ["sparse", "mine"])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from intentbridge.errors import MissingExtraError, ModelError
from intentbridge.understanding.intent import IntentModel, SparseIntentClassifier

IntentModelClass = Any
"""A class with ``__init__(**params)``, ``fit``, ``predict_proba``, ``classes_``,
``save(directory)`` and a ``load(directory)`` classmethod (see :class:`IntentModel`)."""


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A pipeline: which intent model kinds, with which constructor parameters."""

    name: str
    intent_models: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    #: Entities: ``"crf"`` (CRF + rules) or ``"crf+dense"`` (the CRF's marginals mixed
    #: with a fine-tuned transformer tagger's probabilities, see :mod:`.dense_tagger`).
    entity_tagger: str = "crf"


def _sparse() -> IntentModelClass:
    return SparseIntentClassifier


def _dense() -> IntentModelClass:
    # The dense model needs the 'embeddings' extra; import only when asked for.
    try:
        module = importlib.import_module("intentbridge.understanding.dense")
    except ImportError as exc:
        raise MissingExtraError("the accurate pipeline", "embeddings") from exc
    return module.DenseIntentClassifier


_KINDS: dict[str, Callable[[], IntentModelClass]] = {"sparse": _sparse, "dense": _dense}
_PIPELINES: dict[str, PipelineSpec] = {
    "fast": PipelineSpec(
        "fast",
        ("sparse",),
        description="TF-IDF word+char n-grams and static word-piece vectors, linear SVM; "
        "CRF entities",
    ),
    "accurate": PipelineSpec(
        "accurate",
        ("sparse", "dense"),
        description="fast, averaged with a dense sentence-embedding classifier; "
        "CRF entities mixed with a fine-tuned transformer tagger",
        entity_tagger="crf+dense",
        # Training fits the dense model twice (held-out, then all data): each fit gets
        # 45% of the 570 s training budget. Only large data reaches it: SGD (34k texts)
        # took 863 s at 480 s a fit; BANKING77/CLINC150 fits take 100-150 s.
        # The sparse model is the one the accurate pipeline was validated with
        # (docs/nlu-accurate.md): no static word-piece vectors (distilled from the same
        # MiniLM the dense model fine-tunes) and the SVM's C of that time.
        params={
            "dense": {"time_budget_s": 256.5},
            "sparse": {"static_weight": 0.0, "C": 1.0},
        },
    ),
}


def dense_tagger_class() -> Any:
    """:class:`~intentbridge.understanding.dense_tagger.DenseTokenTagger` (lazily imported).

    Using it without the ``embeddings`` extra raises :class:`MissingExtraError`.
    """
    try:
        module = importlib.import_module("intentbridge.understanding.dense_tagger")
    except ImportError as exc:
        raise MissingExtraError("the accurate pipeline", "embeddings") from exc
    return module.DenseTokenTagger


def register_intent_model(kind: str, loader: Callable[[], IntentModelClass]) -> None:
    """Make an intent model class available under ``kind``.

    ``loader`` returns the class; it is called only when the kind is used, so heavy
    imports can stay inside it.
    """
    _KINDS[kind] = loader


def register_pipeline(
    name: str,
    intent_models: Sequence[str],
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    description: str = "",
    entity_tagger: str = "crf",
) -> PipelineSpec:
    """Register (or replace) a pipeline built from registered intent model kinds.

    ``entity_tagger``: ``"crf"`` or ``"crf+dense"`` (see :attr:`PipelineSpec.entity_tagger`).
    """
    if entity_tagger not in ("crf", "crf+dense"):
        raise ModelError(f"unknown entity tagger '{entity_tagger}'; use 'crf' or 'crf+dense'")
    unknown = [k for k in intent_models if k not in _KINDS]
    if unknown:
        raise ModelError(f"unknown intent model kind(s) {unknown}; known: {sorted(_KINDS)}")
    spec = PipelineSpec(name, tuple(intent_models), dict(params or {}), description, entity_tagger)
    _PIPELINES[name] = spec
    return spec


def get_pipeline(name: str) -> PipelineSpec:
    """The pipeline called ``name``; :class:`ModelError` lists the known ones."""
    try:
        return _PIPELINES[name]
    except KeyError:
        raise ModelError(
            f"unknown pipeline '{name}'; choose one of: {', '.join(sorted(_PIPELINES))}"
        ) from None


def pipeline_names() -> list[str]:
    """Registered pipeline names, sorted."""
    return sorted(_PIPELINES)


def intent_model_class(kind: str) -> IntentModelClass:
    """The class registered for ``kind`` (may raise :class:`MissingExtraError`)."""
    try:
        loader = _KINDS[kind]
    except KeyError:
        raise ModelError(
            f"unknown intent model kind '{kind}'",
        ) from None
    return loader()


def make_intent_model(kind: str, params: Mapping[str, Any] | None = None) -> IntentModel:
    """A fresh, unfitted intent model of ``kind``."""
    cls = intent_model_class(kind)
    try:
        model: IntentModel = cls(**dict(params or {}))
    except ImportError as exc:  # a dense model may import its encoder lazily
        raise MissingExtraError(f"the '{kind}' intent model", "embeddings") from exc
    return model
