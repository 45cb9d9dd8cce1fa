"""The committed banking set and one fast model trained on it, shared by the modules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from intentbridge.understanding import NluModel, TrainingData, load_training_data

DATA = Path(__file__).parents[1] / "data" / "nlu"
#: the reference date the bank model resolves "tomorrow" and "friday" against
TODAY = dt.date(2026, 11, 25)


@pytest.fixture(scope="session")
def bank_data() -> TrainingData:
    return load_training_data(DATA / "bank.yml")


@pytest.fixture(scope="session")
def bank_model(bank_data: TrainingData) -> NluModel:
    """Read-only: tests that change it use ``monkeypatch``, which puts it back."""
    return NluModel.train(bank_data, today=lambda: TODAY)
