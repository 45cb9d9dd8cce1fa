"""The banking bot and the sample bank, both served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bankclient import Bank
from corebank.app import create_app as create_bank

from intentbridge.project import BotProject, load_project
from intentbridge.testing import LoopbackServer
from intentbridge.testing.bot import BotClient, serve_bot

BANK_DIR = Path(__file__).resolve().parents[2] / "examples" / "banking"


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    with LoopbackServer(create_bank(tmp_path / "bank.sqlite3")) as url:
        b = Bank(url)
        yield b
        b.client.close()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.sqlite3'}"


@pytest.fixture
def project(project_dir: Path, bank: Bank) -> BotProject:
    return load_project(project_dir, env={"COREBANK_URL": bank.url})


@pytest.fixture
def bot(project: BotProject, store_url: str) -> Iterator[BotClient]:
    with serve_bot(project, store_url) as client:
        yield client
