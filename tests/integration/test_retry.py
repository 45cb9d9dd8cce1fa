"""RetryMiddleware retries safe calls on transient failures, and nothing else."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from intentbridge.integration.backend import BackendClient, BackendResult
from intentbridge.integration.deadline import deadline_scope
from intentbridge.integration.middleware import RetryDecision, RetryMiddleware, compose
from intentbridge.integration.middleware.retry import set_testing
from intentbridge.project.schema import RetrySettings
from intentbridge.types import Call, HttpMethod, Next, Outcome, Result


def call(path: str, method: HttpMethod = "GET", **fields: Any) -> Call:
    return Call(backend="bank", operation="op", method=method, path=path, **fields)


@pytest.fixture
async def client(base_url: str, make_backend: Any) -> AsyncIterator[BackendClient]:
    c = BackendClient("bank", make_backend(base_url, timeout=1))
    yield c
    await c.aclose()


def chain(client: BackendClient, **settings: Any) -> Next:
    retry = RetryMiddleware(RetrySettings(**settings))
    return compose([retry], client.send)


async def test_get_retried_on_503_then_succeeds(
    client: BackendClient, fake: Any, key: str, sleeps: list[float]
) -> None:
    result = await chain(client)(call(f"/flaky/{key}", query=(("fail", "1"),)))
    assert (result.outcome, result.attempts) == ("ok", 2)
    assert fake.counts[key] == 2
    assert len(sleeps) == 1
    assert 0.1 <= sleeps[0] <= 0.2  # backoff 0.1 plus up to 0.1 of jitter


async def test_gives_up_after_the_configured_attempts(
    client: BackendClient, fake: Any, key: str, sleeps: list[float]
) -> None:
    result = await chain(client, attempts=3)(call(f"/flaky/{key}", query=(("fail", "9"),)))
    assert (result.outcome, result.status_code, result.attempts) == ("unavailable", 503, 3)
    assert fake.counts[key] == 3
    assert len(sleeps) == 2
    assert sleeps[1] >= 0.2  # exponential: the second wait doubles


async def test_post_without_key_is_never_retried(
    client: BackendClient, fake: Any, key: str
) -> None:
    result = await chain(client)(call(f"/flaky/{key}", "POST", query=(("fail", "1"),)))
    assert (result.outcome, result.attempts) == ("unavailable", 1)
    assert fake.counts[key] == 1


async def test_post_with_key_is_retried_with_the_same_key(
    client: BackendClient, fake: Any, key: str
) -> None:
    c = call(f"/flaky/{key}", "POST", query=(("fail", "1"),), idempotency_key="idem-1")
    result = await chain(client)(c)
    assert (result.outcome, result.attempts) == ("ok", 2)
    assert [h["idempotency-key"] for h in fake.seen[key]] == ["idem-1", "idem-1"]


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500, 501])
async def test_other_statuses_are_not_retried(
    client: BackendClient, fake: Any, key: str, status: int
) -> None:
    result = await chain(client)(
        call(f"/flaky/{key}", query=(("fail", "1"), ("code", str(status))))
    )
    assert result.attempts == 1
    assert fake.counts[key] == 1


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
async def test_transient_statuses_are_retried(
    client: BackendClient, fake: Any, key: str, status: int
) -> None:
    result = await chain(client)(
        call(f"/flaky/{key}", query=(("fail", "1"), ("code", str(status))))
    )
    assert (result.outcome, result.attempts) == ("ok", 2)


async def test_outcome_unknown_retried_only_with_a_key(
    base_url: str, make_backend: Any, fake: Any, key: str
) -> None:
    c = BackendClient("bank", make_backend(base_url, timeout=0.1))
    try:
        send = chain(c, attempts=2)
        slow = (("delay", "0.25"),)
        without = await send(call(f"/slow/{key}", "POST", query=slow))
        assert (without.outcome, without.attempts) == ("outcome_unknown", 1)
        with_key = await send(call(f"/slow/{key}", "POST", query=slow, idempotency_key="k"))
        assert (with_key.outcome, with_key.attempts) == ("outcome_unknown", 2)
    finally:
        await c.aclose()
    assert fake.counts[key] == 3


async def test_retry_after_seconds_is_honoured(
    client: BackendClient, key: str, sleeps: list[float]
) -> None:
    q = (("fail", "1"), ("code", "429"), ("retry_after", "1"))
    result = await chain(client, max_backoff=2)(call(f"/flaky/{key}", query=q))
    assert (result.outcome, result.attempts) == ("ok", 2)
    assert sleeps == [1.0]


async def test_retry_after_http_date_is_honoured(
    client: BackendClient, key: str, sleeps: list[float]
) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    q = (("fail", "1"), ("code", "503"), ("retry_after", when))
    with deadline_scope(10):
        result = await chain(client)(call(f"/flaky/{key}", query=q))
    assert result.attempts == 2
    assert 0.5 <= sleeps[0] <= 2.0  # whole seconds on the wire


async def test_retry_after_beyond_the_budget_ends_retries(
    client: BackendClient, fake: Any, key: str, sleeps: list[float]
) -> None:
    q = (("fail", "1"), ("code", "429"), ("retry_after", "30"))
    result = await chain(client, max_backoff=2)(call(f"/flaky/{key}", query=q))
    assert (result.outcome, result.attempts) == ("rate_limited", 1)
    assert sleeps == []
    assert fake.counts[key] == 1


async def test_retry_after_within_the_deadline_is_waited(
    client: BackendClient, key: str, sleeps: list[float]
) -> None:
    q = (("fail", "1"), ("code", "429"), ("retry_after", "30"))
    with deadline_scope(60):
        result = await chain(client, max_backoff=2)(call(f"/flaky/{key}", query=q))
    assert result.attempts == 2
    assert sleeps == [30.0]


async def test_no_wait_past_the_deadline(
    client: BackendClient, key: str, sleeps: list[float]
) -> None:
    with deadline_scope(0.05):
        result = await chain(client, backoff=0.1)(call(f"/flaky/{key}", query=(("fail", "1"),)))
    assert (result.outcome, result.attempts) == ("unavailable", 1)
    assert sleeps == []


async def test_real_sleeps_outside_testing_mode(client: BackendClient, key: str) -> None:
    set_testing(False)  # the autouse fixture restores testing mode afterwards
    started = time.monotonic()
    result = await chain(client, backoff=0.05, max_backoff=0.05)(
        call(f"/flaky/{key}", query=(("fail", "1"),))
    )
    assert result.attempts == 2
    assert time.monotonic() - started >= 0.05


async def test_hooks_see_each_decision(client: BackendClient, key: str) -> None:
    decisions: list[RetryDecision] = []
    retry = RetryMiddleware(RetrySettings(attempts=3), hooks=[decisions.append])
    result = await compose([retry], client.send)(call(f"/flaky/{key}", query=(("fail", "2"),)))
    assert result.attempts == 3
    assert [(d.attempt, d.outcome, d.status_code) for d in decisions] == [
        (1, "unavailable", 503),
        (2, "unavailable", 503),
    ]


def _result(outcome: Outcome, status: int | None = None, **fields: Any) -> Result:
    return BackendResult(call=call("/x", **fields), outcome=outcome, status_code=status)


@pytest.mark.parametrize(
    ("method", "key", "outcome", "status", "expected"),
    [
        ("GET", None, "timeout", None, True),
        ("PUT", None, "unavailable", 503, True),
        ("DELETE", None, "rate_limited", 429, True),
        ("GET", None, "unavailable", 500, False),
        ("GET", None, "rejected", 400, False),
        ("GET", None, "auth_failed", 401, False),
        ("POST", None, "unavailable", 503, False),
        ("PATCH", None, "timeout", None, False),
        ("POST", "k", "unavailable", 503, True),
        ("POST", None, "outcome_unknown", None, False),
        ("POST", "k", "outcome_unknown", None, True),
        ("GET", None, "ok", 200, False),
    ],
)
def test_retryable_table(
    method: HttpMethod, key: str | None, outcome: Outcome, status: int | None, expected: bool
) -> None:
    r = _result(outcome, status, method=method, idempotency_key=key)
    assert RetryMiddleware().retryable(r.call, r) is expected


def test_custom_is_idempotent() -> None:
    retry = RetryMiddleware(is_idempotent=lambda c: c.operation == "op")
    r = _result("unavailable", 503, method="POST")
    assert retry.retryable(r.call, r)


@pytest.mark.parametrize("later", ["unavailable", "rate_limited", "timeout"])
async def test_a_lost_answer_is_not_overwritten_by_a_later_non_answer(later: Outcome) -> None:
    """Attempt 1 may have moved money; a 503 on attempt 2 must not report 'failed'."""
    script: list[Outcome] = ["outcome_unknown", later, later]
    seen: list[Outcome] = []

    async def endpoint(call: Call) -> Result:
        outcome = script[len(seen)]
        seen.append(outcome)
        return Result(call=call, outcome=outcome)

    call = Call(
        backend="bank",
        operation="transfer",
        method="POST",
        path="/t",
        idempotency_key="k-1",
        moves_money=True,
    )
    set_testing(True)
    try:
        chain = compose([RetryMiddleware(RetrySettings(attempts=3))], endpoint)
        result = await chain(call)
    finally:
        set_testing(False)
    assert seen == script
    assert result.outcome == "outcome_unknown"
    assert result.attempts == 3


async def test_a_definite_answer_after_a_lost_one_settles_it() -> None:
    script: list[Outcome] = ["outcome_unknown", "ok"]
    seen: list[Outcome] = []

    async def endpoint(call: Call) -> Result:
        seen.append(script[len(seen)])
        return Result(call=call, outcome=seen[-1])

    call = Call(
        backend="bank",
        operation="transfer",
        method="POST",
        path="/t",
        idempotency_key="k-2",
        moves_money=True,
    )
    set_testing(True)
    try:
        result = await compose([RetryMiddleware(RetrySettings(attempts=3))], endpoint)(call)
    finally:
        set_testing(False)
    assert result.outcome == "ok" and result.attempts == 2
