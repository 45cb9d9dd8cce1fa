"""Rate limits: per user and operation, a backend's quota, incoming per sender — local
and shared through Redis — and the INTENTBRIDGE_RATE_LIMITS=off switch."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from intentbridge.integration import Integrations
from intentbridge.integration.rate_limits import (
    IncomingLimiter,
    RateLimitDecision,
    RateLimits,
    rate_limits_enabled,
)
from intentbridge.project.schema import BotConfig, LimitSettings
from intentbridge.types import Money, Result

TRANSFER = {
    "method": "POST",
    "moves_money": True,
    "body": {"amount": "{amount}"},
    "parameters": {"key": {}, "amount": {"type": "money"}},
    "user_rate_limit": "5/minute",
}


async def transfer(integrations: Integrations, key: str, user: str, n: int) -> Result:
    return await integrations.execute(
        "transfer",
        {"key": key, "amount": Money(Decimal("5"), "EUR")},
        conversation_id=f"conv-{user}",
        user_id=user,
        idempotency_key=f"{user}-{n}",
    )


@pytest.fixture
def transfers_config(base_url: str, make_bot: Callable[..., BotConfig]) -> BotConfig:
    return make_bot(base_url, operations={"transfer": TRANSFER, "probe": {}})


async def test_sixth_transfer_in_a_minute_is_rate_limited_for_that_user_only(
    transfers_config: BotConfig, fake: Any, key: str
) -> None:
    decisions: list[Any] = []
    async with Integrations.from_config(
        transfers_config, decision_hooks=[decisions.append]
    ) as ints:
        outcomes = [(await transfer(ints, key, "alice", n)).outcome for n in range(5)]
        assert outcomes == ["ok"] * 5
        sixth = await transfer(ints, key, "alice", 5)
        assert sixth.outcome == "rate_limited"
        assert sixth.error == "too many transfer requests from this user (limit 5/minute)"
        assert fake.hits[key] == 5  # the sixth was never sent

        assert (await transfer(ints, key, "bob", 0)).outcome == "ok"
        # other operations of the same user are not limited
        probe = await ints.execute("probe", {"key": key}, conversation_id="c", user_id="alice")
        assert probe.outcome == "ok"
    assert decisions == [
        RateLimitDecision(
            scope="user",
            decision="limited",
            limit="5/minute",
            backend="bank",
            operation="transfer",
            subject="alice",
        )
    ]


async def test_backend_quota_refuses_without_calling_when_there_is_no_time_to_wait(
    base_url: str, make_bot: Callable[..., BotConfig], fake: Any, key: str
) -> None:
    config = make_bot(base_url, backend={"rate_limit": "3/minute", "rate_limit_wait": 0.5})
    async with Integrations.from_config(config) as ints:
        results = [
            await ints.execute("probe", {"key": key}, conversation_id="c", user_id=f"u{i}")
            for i in range(4)
        ]
    assert [r.outcome for r in results] == ["ok", "ok", "ok", "rate_limited"]
    assert results[-1].error == "outgoing rate limit for backend bank reached (3/minute)"
    assert fake.hits[key] == 3


async def test_backend_quota_waits_briefly_for_room(
    base_url: str, make_bot: Callable[..., BotConfig], fake: Any, key: str
) -> None:
    config = make_bot(base_url, backend={"rate_limit": "2/second", "rate_limit_wait": 2})
    decisions: list[Any] = []
    async with Integrations.from_config(config, decision_hooks=[decisions.append]) as ints:
        started = time.perf_counter()
        outcomes = [
            (await ints.execute("probe", {"key": key}, conversation_id="c", user_id="u")).outcome
            for _ in range(3)
        ]
        elapsed = time.perf_counter() - started
    assert outcomes == ["ok", "ok", "ok"]
    assert 0.5 < elapsed < 2.0  # the third waited for the window to move
    [decision] = decisions
    assert (decision.scope, decision.decision) == ("backend", "waited")
    assert fake.hits[key] == 3


async def test_incoming_limiter_counts_per_sender() -> None:
    limiter = IncomingLimiter(LimitSettings(incoming_per_sender="3/minute"))
    assert [await limiter.allow("alice") for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow("bob")
    await limiter.aclose()


async def test_incoming_limiter_without_a_limit_allows_everything() -> None:
    limiter = IncomingLimiter(LimitSettings())
    assert not limiter.enabled
    assert all([await limiter.allow("alice") for _ in range(100)])


async def test_rate_limits_off_switch_disables_all_of_them(
    monkeypatch: pytest.MonkeyPatch,
    base_url: str,
    make_bot: Callable[..., BotConfig],
    fake: Any,
    key: str,
) -> None:
    monkeypatch.setenv("INTENTBRIDGE_RATE_LIMITS", "off")
    assert not rate_limits_enabled()
    config = make_bot(
        base_url,
        backend={"rate_limit": "1/minute", "rate_limit_wait": 0},
        operations={"transfer": {**TRANSFER, "user_rate_limit": "1/minute"}},
        limits={"incoming_per_sender": "1/minute"},
    )
    async with Integrations.from_config(config) as ints:
        outcomes = {(await transfer(ints, key, "alice", n)).outcome for n in range(5)}
    assert outcomes == {"ok"}
    assert fake.hits[key] == 5
    limiter = IncomingLimiter(config.limits)
    assert all([await limiter.allow("alice") for _ in range(5)])


async def test_no_rate_limit_configured_means_no_rate_limit_step(
    base_url: str, make_bot: Callable[..., BotConfig]
) -> None:
    config = make_bot(base_url)
    async with Integrations.from_config(config) as ints:
        names = [type(step).__name__ for step in ints.pipeline.middleware_for("probe")]
    assert names == ["BreakerMiddleware", "BulkheadMiddleware", "RetryMiddleware"]


# --- shared through Redis -----------------------------------------------------------


@pytest.mark.redis
async def test_two_workers_share_per_user_and_backend_limits_through_redis(
    base_url: str,
    make_bot: Callable[..., BotConfig],
    fake: Any,
    key: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = make_bot(
        base_url,
        backend={"rate_limit": "8/minute", "rate_limit_wait": 0},
        operations={"transfer": TRANSFER},
        limits={"storage_url": redis_url, "key_prefix": redis_prefix},
    )
    async with (
        Integrations.from_config(config) as worker1,
        Integrations.from_config(config) as worker2,
    ):
        assert worker1.rate_limits.shared
        for n in range(5):
            worker = worker1 if n % 2 else worker2
            assert (await transfer(worker, key, "alice", n)).outcome == "ok"
        sixth = await transfer(worker1, key, "alice", 5)
        assert sixth.error == "too many transfer requests from this user (limit 5/minute)"
        # the backend quota (8) is shared too: bob gets 3 more between both workers
        outcomes = [
            (await transfer(worker1 if n % 2 else worker2, key, "bob", n)).outcome for n in range(4)
        ]
    assert outcomes == ["ok", "ok", "ok", "rate_limited"]
    assert fake.hits[key] == 8


@pytest.mark.redis
async def test_incoming_limiter_shared_through_redis(redis_url: str, redis_prefix: str) -> None:
    settings = LimitSettings(
        incoming_per_sender="2/minute", storage_url=redis_url, key_prefix=redis_prefix
    )
    first, second = IncomingLimiter(settings), IncomingLimiter(settings)
    try:
        assert await first.allow("alice")
        assert await second.allow("alice")
        assert not await first.allow("alice")
        assert not await second.allow("alice")
        assert await second.allow("bob")
    finally:
        await first.aclose()
        await second.aclose()


async def test_unreachable_redis_limits_still_count_locally(refused_url: str) -> None:
    settings = LimitSettings(incoming_per_sender="2/minute", storage_url=f"redis://{refused_url}/0")
    limiter = IncomingLimiter(settings)
    try:
        started = time.perf_counter()
        assert [await limiter.allow("alice") for _ in range(3)] == [True, True, False]
        assert time.perf_counter() - started < 2.0
        assert isinstance(limiter.storage, RateLimits)
    finally:
        await limiter.aclose()
