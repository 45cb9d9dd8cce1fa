"""Conversation tests in YAML: what the user says, what the bot must answer, which
backend calls it must make — with or without faults injected between bot and backend.

A project keeps them in ``tests/*.yml``; ``intentbridge test PROJECT`` runs them::

    tests:
      - name: balance
        user: alice
        steps:
          - user: what's my balance?
            bot: "1,250.50 EUR"                  # text the reply must contain
            calls:
              - {method: GET, path: /customers/alice/accounts}
      - name: a transfer survives a flaky bank
        faults: {backend: corebank, error_5xx: 0.5, seed: 3}
        steps:
          - user: move 10 euros from checking to savings
            bot: {regex: "Move 10\\.00 EUR .*\\?"}
          - user: "yes"
            bot: Done
            calls:
              - method: POST
                path: /customers/alice/transfers
                body: {amount: "10.00", currency: EUR}   # these keys must match

Each test gets a fresh conversation store; the backends are the project's own (start
them first). Tests run in file order, since they share the backends' state.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intentbridge.bot import Bot, BotSettings
from intentbridge.errors import ConfigError
from intentbridge.project.loader import BotProject, read_text_file, validation_error, yaml_data
from intentbridge.testing.faults import FaultProxy, Faults
from intentbridge.types import Call, Message, Next, Result


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextCheck(_Model):
    regex: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ExpectedCall(_Model):
    method: str | None = None
    path: str | None = None
    body: dict[str, Any] | None = None
    outcome: str | None = None


class Step(_Model):
    user: str
    bot: str | TextCheck | list[str | TextCheck] | None = None
    calls: list[ExpectedCall] | None = None


class FaultSettings(_Model):
    backend: str
    latency: tuple[float, float] = (0.0, 0.0)
    error_5xx: float = 0.0
    rate_limit: float = 0.0
    retry_after: float = 1.0
    lose_response: float = 0.0
    reset: float = 0.0
    malformed: float = 0.0
    seed: int | None = 0
    methods: tuple[str, ...] | None = None
    path_prefix: str | None = None


class ConversationTest(_Model):
    name: str
    user: str = "alice"
    faults: FaultSettings | None = None
    steps: list[Step] = Field(min_length=1)


class TestFile(_Model):
    tests: list[ConversationTest]


@dataclass
class StepFailure:
    step: int
    said: str
    problem: str


@dataclass
class TestOutcome:
    name: str
    path: Path
    failures: list[StepFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def load_tests(project: BotProject) -> list[tuple[Path, ConversationTest]]:
    """The conversation tests of ``project`` (``tests/*.yml``), in file order."""
    folder = project.root / "tests"
    found: list[tuple[Path, ConversationTest]] = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        text = read_text_file(path, hint="conversation tests must be readable files")
        raw, lines = yaml_data(text, path)
        try:
            parsed = TestFile.model_validate(raw)
        except ValidationError as exc:
            hint = "see docs/testing.md for the conversation test format"
            raise validation_error(exc, path, lines, hint) from None
        found.extend((path, test) for test in parsed.tests)
    return found


class _CallRecorder:
    """A middleware that keeps each call as sent (method, path, body) and its outcome."""

    def __init__(self) -> None:
        self.calls: list[tuple[Call, Result]] = []

    async def __call__(self, call: Call, call_next: Next) -> Result:
        result = await call_next(call)
        self.calls.append((call, result))
        return result


async def run_test(project: BotProject, path: Path, test: ConversationTest) -> TestOutcome:
    """Run one conversation test against the project's backends."""
    outcome = TestOutcome(test.name, path)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ib-test-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'store.sqlite3'}"
        proxy: FaultProxy | None = None
        if test.faults is not None:
            proxy, project = await _with_faults(project, test.faults)
        recorder = _CallRecorder()
        bot = await Bot.from_project(project, BotSettings(store_url=store), middleware=[recorder])
        try:
            for number, step in enumerate(test.steps, start=1):
                recorder.calls.clear()
                replies = await bot.handle(Message(text=step.user, sender=test.user))
                text = "\n".join(r.text for r in replies)
                for problem in _check_text(step, text) + _check_calls(step, recorder.calls):
                    outcome.failures.append(StepFailure(number, step.user, problem))
        finally:
            await bot.aclose()
            if proxy is not None:
                await proxy.stop()
    outcome.seconds = time.perf_counter() - started
    return outcome


async def _with_faults(project: BotProject, faults: FaultSettings) -> tuple[FaultProxy, BotProject]:
    backend = project.config.backends.get(faults.backend)
    if backend is None:
        raise ConfigError(f"unknown backend {faults.backend!r}", field="faults.backend")
    settings = faults.model_dump(exclude={"backend"})
    proxy = FaultProxy(backend.base_url, Faults(**settings))
    await proxy.start()
    backends = dict(project.config.backends)
    backends[faults.backend] = backend.model_copy(update={"base_url": proxy.url})
    config = project.config.model_copy(update={"backends": backends})
    return proxy, BotProject(root=project.root, config=config, config_path=project.config_path)


def _check_text(step: Step, text: str) -> list[str]:
    if step.bot is None:
        return []
    checks = step.bot if isinstance(step.bot, list) else [step.bot]
    problems = []
    for check in checks:
        if isinstance(check, TextCheck):
            if re.search(check.regex, text, re.DOTALL) is None:
                problems.append(f"reply {text!r} does not match /{check.regex}/")
        elif check not in text:
            problems.append(f"reply {text!r} does not contain {check!r}")
    return problems


def _check_calls(step: Step, calls: list[tuple[Call, Result]]) -> list[str]:
    if step.calls is None:
        return []
    made = [f"{c.method} {c.path}" for c, _ in calls]
    remaining = list(calls)
    problems = []
    for expected in step.calls:
        match = next((cr for cr in remaining if _matches(expected, *cr)), None)
        if match is None:
            problems.append(f"expected call {expected.model_dump(exclude_none=True)}; made {made}")
        else:
            remaining.remove(match)
    return problems


def _matches(expected: ExpectedCall, call: Call, result: Result) -> bool:
    if expected.method is not None and expected.method.upper() != call.method:
        return False
    if expected.path is not None and expected.path != call.path:
        return False
    if expected.outcome is not None and expected.outcome != result.outcome:
        return False
    if expected.body is not None:
        body = call.json if isinstance(call.json, dict) else {}
        if any(body.get(k) != v for k, v in expected.body.items()):
            return False
    return True
