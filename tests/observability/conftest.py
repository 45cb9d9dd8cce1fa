"""The banking bot and a sample bank whose requests are recorded, on loopback HTTP.

The bank is wrapped in :class:`RecordingApp`, so a test can see exactly which headers
reached the backend (``traceparent``, and the bearer token a leak check looks for).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from corebank.app import create_app as create_bank
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from intentbridge.observability.logging import configure_logging
from intentbridge.observability.tracing import capture_spans
from intentbridge.project import BotProject, load_project
from intentbridge.testing import LoopbackServer
from intentbridge.testing.bot import BotClient, serve_bot

BANK_DIR = Path(__file__).resolve().parents[2] / "examples" / "banking"
CLIENT_SECRET = "obs-cl1ent-s3cret-never-logged"


@dataclass
class Seen:
    """One request as the backend received it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingApp:
    """ASGI wrapper that records every HTTP request's method, path and headers."""

    app: Any
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.seen.append(Seen(scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)

    def api_requests(self) -> list[Seen]:
        """Requests other than the OAuth token request."""
        return [s for s in self.seen if s.path != "/oauth/token"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RecordingApp]]:
    """The sample bank (with our own client secret) and what it received."""
    db = tmp_path_factory.mktemp("bank") / "bank.sqlite3"
    recorder = RecordingApp(create_bank(db, client_secret=CLIENT_SECRET))
    with LoopbackServer(recorder) as url:
        yield url, recorder


@pytest.fixture(scope="module")
def project(project_dir: Path, bank: tuple[str, RecordingApp]) -> BotProject:
    url, _ = bank
    return load_project(project_dir, env={"COREBANK_URL": url, "BANK_CLIENT_SECRET": CLIENT_SECRET})


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'bot.sqlite3'}"


@pytest.fixture(scope="module")
def bot(project: BotProject, store_url: str) -> Iterator[BotClient]:
    """The banking bot served on loopback, for the whole module."""
    with serve_bot(project, store_url) as client:
        yield client


@pytest.fixture
def recorder(bank: tuple[str, RecordingApp]) -> RecordingApp:
    """What the bank received, starting empty for each test."""
    _, app = bank
    app.seen.clear()
    return app


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, spans kept in memory."""
    with capture_spans() as exporter:
        yield exporter


class Logs:
    """What the real logging set-up wrote to stderr during a test (JSON lines)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._text = ""

    @property
    def text(self) -> str:
        self._text += self._capsys.readouterr().err
        return self._text

    def events(self) -> list[dict[str, Any]]:
        """The JSON events (anything else written to stderr is skipped)."""
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    """Logging configured as ``intentbridge run`` does it, captured from stderr."""
    configure_logging(json=True)
    # configure_logging caches loggers for speed; one cached now would keep this
    # test's set-up after it, so caching stays off while capturing. (Loggers cached
    # earlier in the session write to whatever sys.stderr is, so they are captured too.)
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield Logs(capsys)
    finally:
        structlog.reset_defaults()
