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

from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    load_training_data,
    save_training_data,
)
from intentbridge.understanding.evaluation import evaluate
from intentbridge.understanding.interpreter import Interpreter, ModelInterpreter
from intentbridge.understanding.model import NluModel
from intentbridge.understanding.pipeline import (
    get_pipeline,
    pipeline_names,
    register_intent_model,
    register_pipeline,
)

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
