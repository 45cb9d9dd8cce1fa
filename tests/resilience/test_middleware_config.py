"""The middleware chain from bot.yaml: defaults, custom steps by dotted path, per-operation
overrides, the Python API, and errors that name the field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from intentbridge.errors import ConfigError
from intentbridge.integration import Integrations
from intentbridge.project import parse_config
from intentbridge.project.schema import DEFAULT_MIDDLEWARE, BotConfig
from intentbridge.types import Call, Next, Result

CUSTOM_MODULE = '''
import dataclasses

seen = []


def tagged(settings):
    """Adds X-Team from the step's settings and remembers each call it saw."""
    header = ("X-Team", settings.get("team", "none"))

    async def step(call, call_next):
        seen.append((settings.get("team"), call.operation))
        return await call_next(dataclasses.replace(call, headers=(*call.headers, header)))

    return step


def broken(settings):
    raise RuntimeError("no good")


not_a_factory = 42
'''


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An importable module of middleware factories, unique to this test."""
    name = f"custom_mw_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(CUSTOM_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module(name)


def yaml_bot(url: str, backend_extra: str = "", op_extra: str = "", top: str = "") -> str:
    """A bot.yaml text; the extras are YAML lines added to backend 'bank', operation
    'probe' and the top level (backend_extra starts on line 4)."""

    def indent(text: str, spaces: int) -> str:
        return "".join(" " * spaces + line + "\n" for line in text.splitlines())

    return (
        "backends:\n"
        "  bank:\n"
        f"    base_url: {url}\n" + indent(backend_extra, 4) + "operations:\n"
        "  probe:\n"
        "    backend: bank\n"
        "    path: /hit/{key}\n"
        "    parameters: {key: {}}\n" + indent(op_extra, 4) + "  other:\n"
        "    backend: bank\n"
        "    path: /hit/{key}\n"
        "    parameters: {key: {}}\n" + top + "\n"
    )


async def test_custom_middleware_from_a_dotted_path_runs_with_its_settings(
    base_url: str, custom_module: Any, key: str, fake: Any
) -> None:
    name = custom_module.__name__
    text = yaml_bot(
        base_url,
        backend_extra=f"middleware: [breaker, {{'{name}:tagged': {{team: payments}}}}, retry]",
    )
    config = parse_config(text, "bot.yaml", {})
    async with Integrations.from_config(config) as ints:
        steps = ints.pipeline.middleware_for("probe")
        result = await ints.execute("probe", {"key": key}, conversation_id="c", user_id="u")
    assert result.outcome == "ok"
    assert custom_module.seen == [("payments", "probe")]
    assert [type(s).__name__ for s in steps] == ["BreakerMiddleware", "function", "RetryMiddleware"]


async def test_an_operation_overrides_its_backends_chain(
    base_url: str, custom_module: Any, key: str, fake: Any
) -> None:
    """'probe' gets no retries and a custom step; 'other' keeps the backend's defaults."""
    name = custom_module.__name__
    text = yaml_bot(
        base_url,
        op_extra=f"middleware: [breaker, '{name}:tagged', {{retry: {{attempts: 1}}}}]",
    )
    config = parse_config(text, "bot.yaml", {})
    fake.mode[key] = "fail"
    async with Integrations.from_config(config) as ints:
        probe = await ints.execute("probe", {"key": key}, conversation_id="c", user_id="u")
        assert (probe.attempts, fake.hits[key]) == (1, 1)
        other = await ints.execute("other", {"key": key}, conversation_id="c", user_id="u")
        assert (other.attempts, fake.hits[key]) == (3, 4)
        probe_steps = ints.pipeline.middleware_for("probe")
        other_steps = ints.pipeline.middleware_for("other")
    assert custom_module.seen == [(None, "probe")]
    # the override shares the backend's breaker (one circuit per backend)
    assert probe_steps[0] is other_steps[0]


async def test_an_empty_list_means_no_middleware(base_url: str) -> None:
    config = parse_config(yaml_bot(base_url, backend_extra="middleware: []"), "bot.yaml", {})
    async with Integrations.from_config(config) as ints:
        assert ints.pipeline.middleware_for("probe") == []


def test_default_chain_order_is_documented() -> None:
    assert DEFAULT_MIDDLEWARE == ("rate_limit", "breaker", "bulkhead", "retry")


async def test_python_api_middleware_runs_outside_the_configured_chain(
    base_url: str, make_bot: Callable[..., BotConfig], key: str, fake: Any
) -> None:
    """Middleware given to from_config runs once per call, before the breaker sees it."""
    seen: list[str] = []

    async def deny_probe(call: Call, call_next: Next) -> Result:
        seen.append(call.operation)
        if call.params.get("key") == "forbidden":
            return Result(call=call, outcome="denied", error="not today")
        return await call_next(call)

    config = make_bot(base_url, backend={"breaker": {"failure_threshold": 1}})
    async with Integrations.from_config(config, middleware=[deny_probe]) as ints:
        denied = await ints.execute("probe", {"key": "forbidden"}, conversation_id="c", user_id="u")
        ok = await ints.execute("probe", {"key": key}, conversation_id="c", user_id="u")
    assert (denied.outcome, ok.outcome) == ("denied", "ok")
    assert seen == ["probe", "probe"]


# --- errors name the field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("backend_extra", "field", "line", "words"),
    [
        ("middleware: [breaker, nonsense]", "backends.bank.middleware.1", 4, "unknown middleware"),
        ("middleware: [retry, retry]", "backends.bank.middleware", 4, "more than once"),
        (
            "middleware: [{breaker: {failure_threshold: 2}}]",
            "backends.bank.middleware.0",
            4,
            "configure it with 'breaker' on the backend",
        ),
        (
            "middleware: [{timeout: {seconds: -1}}]",
            "backends.bank.middleware.0",
            4,
            "timeout seconds",
        ),
        ("rate_limit: fifty a second", "backends.bank.rate_limit", 4, "not a rate limit"),
        ("breaker:\n  reset_timeout: 0", "backends.bank.breaker.reset_timeout", 5, "greater"),
        ("max_concurrency: 0", "backends.bank.max_concurrency", 4, "greater"),
    ],
)
def test_backend_config_errors_name_the_field_and_line(
    backend_extra: str, field: str, line: int, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml_bot("http://127.0.0.1:1", backend_extra=backend_extra), "bot.yaml", {})
    assert (info.value.field, info.value.line) == (field, line)
    assert words in info.value.message


def test_operation_and_limits_errors_name_the_field() -> None:
    text = yaml_bot("http://127.0.0.1:1", op_extra="user_rate_limit: lots")
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bot.yaml", {})
    assert info.value.field == "operations.probe.user_rate_limit"

    text = yaml_bot("http://127.0.0.1:1", top="limits:\n  storage_url: mongodb://x")
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bot.yaml", {})
    assert info.value.field == "limits.storage_url"
    assert "memory:// or redis://" in info.value.message


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("'{mod}:missing'", "cannot load middleware"),
        ("'{mod}:not_a_factory'", "cannot load middleware"),
        ("'{mod}:broken'", "failed: RuntimeError: no good"),
        ("'no_such_package_xyz.mod:factory'", "cannot load middleware"),
    ],
)
def test_custom_middleware_that_cannot_be_built_names_the_field(
    custom_module: Any, entry: str, words: str
) -> None:
    entry = entry.format(mod=custom_module.__name__)
    text = yaml_bot("http://127.0.0.1:1", op_extra=f"middleware: [retry, {entry}]")
    config = parse_config(text, "bot.yaml", {})
    with pytest.raises(ConfigError) as info:
        Integrations.from_config(config)
    assert info.value.field == "operations.probe.middleware.1"
    assert words in info.value.message


def test_a_user_limit_without_rate_limit_in_the_chain_is_an_error() -> None:
    text = yaml_bot(
        "http://127.0.0.1:1", op_extra="user_rate_limit: 5/minute\nmiddleware: [breaker, retry]"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bot.yaml", {})
    assert info.value.field == "operations.probe.user_rate_limit"
    assert info.value.line == 9
    assert "no 'rate_limit'" in info.value.message
