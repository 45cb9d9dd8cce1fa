"""Shared test set-up.

The sample core bank is a standalone service in ``examples/banking``, not part of the
installed package: make ``import corebank`` work for tests that serve it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BANK_DIR = ROOT / "examples" / "banking"
if str(BANK_DIR) not in sys.path:
    sys.path.insert(0, str(BANK_DIR))


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the banking bot project with its NLU trained once for the session."""
    from intentbridge.project import load_project
    from intentbridge.project.model import train_project

    target = tmp_path_factory.mktemp("banking")
    shutil.copy(BANK_DIR / "bot.yaml", target / "bot.yaml")
    shutil.copytree(BANK_DIR / "data", target / "data")
    train_project(load_project(target, env={"COREBANK_URL": "http://127.0.0.1:1"}))
    return target
