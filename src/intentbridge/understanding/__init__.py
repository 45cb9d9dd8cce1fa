"""Understanding: from message text to an intent with entities.

The parts the rest of intentbridge uses:

- :class:`Interpreter` (protocol) and :class:`ModelInterpreter` — what dialogue calls;
- :class:`NluModel` — ``train(data, pipeline)``, ``save``/``load``, ``parse``;
- :func:`load_training_data` / :class:`TrainingData` — JSONL and Rasa YAML;
- :func:`evaluate` — metrics for a model on annotated examples.

>>> from intentbridge.understanding import NluModel, load_training_data
>>> model = NluModel.train(load_training_data("data/nlu.yml"))
>>> model.parse("send 20 euros to savings tomorrow").entities
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    load_training_data,
    save_training_data,
)
from intentbridge.understanding.interpreter import Interpreter, ModelInterpreter
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.pipeline import (
    get_pipeline,
    pipeline_names,
    register_intent_model,
    register_pipeline,
)

if TYPE_CHECKING:
    from intentbridge.understanding.evaluation import evaluate

# Evaluation (and through it training-only code) is imported on first use, so that
# importing this package for inference stays light (no scikit-learn, no scipy).
_LAZY = {"evaluate": "intentbridge.understanding.evaluation"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "EntitySpan",
    "Interpreter",
    "ModelInterpreter",
    "NluModel",
    "TrainingData",
    "TrainingExample",
    "evaluate",
    "get_pipeline",
    "load_training_data",
    "pipeline_names",
    "register_intent_model",
    "register_pipeline",
    "save_training_data",
]
