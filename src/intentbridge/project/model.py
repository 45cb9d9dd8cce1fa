"""The NLU model of a bot project: trained on demand, reused while the data is unchanged.

>>> interpreter = load_or_train(project)   # trains the first time, then loads in ms
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from intentbridge.errors import ConfigError, ModelError
from intentbridge.project.loader import BotProject
from intentbridge.understanding.data import load_training_data
from intentbridge.understanding.interpreter import ModelInterpreter
from intentbridge.understanding.model import NluModel

FINGERPRINT_FILE = "project-fingerprint.json"


def training_fingerprint(project: BotProject) -> str:
    """A hash of the training files and the pipeline: a change means retrain."""
    digest = hashlib.sha256(project.config.nlu.pipeline.encode())
    for path in _training_files(project):
        digest.update(str(path.relative_to(project.root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def train_project(project: BotProject) -> NluModel:
    """Train the project's NLU from its training data and save it to its model dir."""
    files = _training_files(project)
    data = load_training_data(files)
    model = NluModel.train(data, pipeline=project.config.nlu.pipeline)
    out = project.model_dir
    model.save(out)
    (out / FINGERPRINT_FILE).write_text(
        json.dumps({"fingerprint": training_fingerprint(project)}), encoding="utf-8"
    )
    return model


def load_or_train(project: BotProject, *, force: bool = False) -> ModelInterpreter:
    """The project's interpreter: the saved model if it is current, else a new one."""
    out = project.model_dir
    marker = out / FINGERPRINT_FILE
    if not force and marker.exists():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
            if saved == training_fingerprint(project):
                return ModelInterpreter(NluModel.load(out))
        except (ModelError, ValueError, OSError):
            pass  # stale or damaged: train again below
    return ModelInterpreter(train_project(project))


def _training_files(project: BotProject) -> list[Path]:
    files: list[Path] = []
    for entry in project.training_paths:
        if entry.is_dir():
            files.extend(
                sorted(p for p in entry.rglob("*") if p.suffix in {".yml", ".yaml", ".jsonl"})
            )
        elif entry.exists():
            files.append(entry)
        else:
            raise ConfigError(
                f"training data {entry} does not exist",
                path=project.config_path,
                field="nlu.data",
                hint="list files or folders relative to the project folder",
            )
    if not files:
        raise ConfigError(
            "no training data found",
            path=project.config_path,
            field="nlu.data",
            hint="add .yml (Rasa NLU format) or .jsonl files",
        )
    return files
