"""Prometheus metrics: what ``GET /metrics`` shows after real turns and calls."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from intentbridge.integration import Integrations
from intentbridge.integration.breaker_state import BreakerDecision
from intentbridge.integration.rate_limits import RateLimitDecision
from intentbridge.observability.hooks import LoggingHook, MetricsHook
from intentbridge.project.schema import BotConfig
from intentbridge.testing import LoopbackServer, fast_retries
from intentbridge.testing.bot import BotClient

from .conftest import Logs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(bot: BotClient) -> Samples:
    """Every sample ``GET /metrics`` serves, keyed by name and labels."""
    response = bot.http.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def registry_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_endpoint_shows_turn_and_call_metrics(bot: BotClient) -> None:
    """Turn latency, intents, fallbacks, NLU confidence and call latency by label."""
    sender = "alice"
    before = scrape(bot)
    assert "1,250.50" in bot.say("what's my balance?", sender=sender)
    bot.say("/nlu_fallback", sender=sender)  # a payload: the fallback, without the NLU
    bot.say("/no_such_intent_anywhere", sender=sender)
    after = scrape(bot)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("intentbridge_turn_seconds_count") == 3
    assert delta("intentbridge_turn_seconds_sum") > 0
    assert delta("intentbridge_turns_total", intent="check_balance") == 1
    assert delta("intentbridge_turns_total", intent="nlu_fallback") == 1
    # an intent the project does not know is not a label of its own
    assert delta("intentbridge_turns_total", intent="other") == 1
    assert not any("no_such_intent" in str(labels) for _, labels in after)
    assert delta("intentbridge_fallback_total") == 1
    assert delta("intentbridge_nlu_confidence_count") == 1  # payloads are not the NLU's
    ok = {"backend": "corebank", "operation": "check_balance", "outcome": "ok"}
    assert delta("intentbridge_call_seconds_count", **ok) == 1
    assert delta("intentbridge_call_seconds_bucket", **ok, le="10.0") == 1
    # nobody's identity becomes a label
    assert not any(sender in str(labels) for _, labels in after)


@pytest.fixture(scope="module")
def flaky_url() -> Iterator[str]:
    """A backend whose ``/flaky/{key}`` answers 503 once per key, then 200."""
    app = FastAPI()
    seen: set[str] = set()

    @app.get("/flaky/{key}")
    async def flaky(key: str) -> JSONResponse:
        if key not in seen:
            seen.add(key)
            return JSONResponse({"detail": "try again"}, status_code=503)
        return JSONResponse({"ok": True})

    with LoopbackServer(app) as url:
        yield url


async def test_retries_are_counted_and_each_attempt_is_logged(flaky_url: str, logs: Logs) -> None:
    """A call that succeeds on its second attempt: one retry, two call_attempt events."""
    config = BotConfig.model_validate(
        {
            "backends": {"flaky": {"base_url": flaky_url, "retry": {"attempts": 3}}},
            "operations": {
                "get_thing": {"backend": "flaky", "path": "/flaky/{key}", "parameters": {"key": {}}}
            },
        }
    )
    hooks = (MetricsHook(), LoggingHook())
    retries = registry_value(
        "intentbridge_call_retries_total", backend="flaky", operation="get_thing"
    )
    with fast_retries():
        async with Integrations.from_config(config, hooks=hooks, decision_hooks=hooks) as ints:
            result = await ints.execute(
                "get_thing", {"key": uuid.uuid4().hex}, conversation_id="rest:bob", user_id="bob"
            )
    assert result.ok and result.attempts == 2
    assert (
        registry_value("intentbridge_call_retries_total", backend="flaky", operation="get_thing")
        == retries + 1
    )
    logged = logs.events()
    attempts = [e for e in logged if e["event"] == "call_attempt"]
    assert [(e["attempt"], e["status"], e["outcome"]) for e in attempts] == [
        (1, 503, "unavailable"),
        (2, 200, "ok"),
    ]
    for event in attempts:
        assert event["conversation_id"] == "rest:bob"
        assert event["backend"] == "flaky" and event["operation"] == "get_thing"
        assert event["method"] == "GET" and event["path"].startswith("/flaky/")
        assert event["latency_ms"] > 0
    [retry] = [e for e in logged if e["event"] == "retry"]
    assert retry["attempt"] == 1 and retry["status"] == 503


def test_breaker_and_rate_limit_decisions_reach_the_metrics() -> None:
    """Breaker transitions set the state gauge; rate-limit refusals count by scope."""
    hook = MetricsHook()
    backend = f"b{uuid.uuid4().hex[:6]}"
    states = []
    for decision in ("opened", "half_open", "rejected", "closed"):
        hook(BreakerDecision(backend=backend, decision=decision, operation="op"))
        states.append(registry_value("intentbridge_breaker_state", backend=backend))
    # "rejected" turns a call away but leaves the state (half-open) as it was
    assert states == [2, 1, 1, 0]

    limited = registry_value("intentbridge_rate_limited_total", scope="user")
    hook(RateLimitDecision(scope="user", decision="limited", limit="5/minute", subject="alice"))
    hook(RateLimitDecision(scope="user", decision="waited", limit="5/minute", subject="alice"))
    assert registry_value("intentbridge_rate_limited_total", scope="user") == limited + 1


def test_hooks_ignore_records_they_do_not_know() -> None:
    """A new kind of decision never breaks the metrics or logging hooks."""
    odd: Any = object()
    MetricsHook()(odd)
    LoggingHook()(odd)
