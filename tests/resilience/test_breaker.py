"""Circuit breaker: open, reject without calling, half-open, close, reopen — alone and shared."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from intentbridge.integration import Integrations
from intentbridge.integration.breaker_state import (
    BreakerDecision,
    BreakerStore,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from intentbridge.integration.redis import RedisConnections
from intentbridge.project.schema import BotConfig, BreakerSettings
from intentbridge.types import Result

RESET = 0.2
BREAKER = {"failure_threshold": 3, "reset_timeout": RESET}
NO_RETRY = {"attempts": 1}


@asynccontextmanager
async def running(
    config: BotConfig, decisions: list[Any] | None = None
) -> AsyncIterator[Integrations]:
    hooks = [decisions.append] if decisions is not None else []
    async with Integrations.from_config(config, decision_hooks=hooks) as integrations:
        yield integrations


async def call(integrations: Integrations, key: str, op: str = "probe") -> Result:
    return await integrations.execute(op, {"key": key}, conversation_id="c1", user_id="u1")


@pytest.fixture
def config(base_url: str, make_bot: Callable[..., BotConfig]) -> BotConfig:
    return make_bot(base_url, backend={"breaker": BREAKER, "retry": NO_RETRY})


async def test_breaker_lifecycle_open_reject_half_open_close_reopen(
    config: BotConfig, fake: Any, key: str
) -> None:
    """N failures open it; open rejects without calling; after reset_timeout one trial
    call goes through: success closes it, failure reopens it."""
    decisions: list[Any] = []
    fake.mode[key] = "fail"
    async with running(config, decisions) as integrations:
        for _ in range(3):
            assert (await call(integrations, key)).outcome == "unavailable"
        assert fake.hits[key] == 3

        rejected = await call(integrations, key)
        assert rejected.outcome == "unavailable"
        assert rejected.error == "circuit open for backend bank"
        assert rejected.attempts == 0
        assert fake.hits[key] == 3  # no call was made

        await asyncio.sleep(RESET + 0.05)
        assert (await call(integrations, key)).outcome == "unavailable"  # the trial failed
        assert fake.hits[key] == 4
        assert (await call(integrations, key)).error == "circuit open for backend bank"
        assert fake.hits[key] == 4  # reopened

        fake.mode[key] = "ok"
        await asyncio.sleep(RESET + 0.05)
        assert (await call(integrations, key)).outcome == "ok"  # the trial succeeded
        assert (await call(integrations, key)).outcome == "ok"  # closed again
        assert fake.hits[key] == 6

    kinds = [d.decision for d in decisions if isinstance(d, BreakerDecision)]
    assert kinds == ["opened", "rejected", "half_open", "opened", "rejected", "half_open", "closed"]
    assert all(d.backend == "bank" and d.operation == "probe" for d in decisions)


@pytest.mark.parametrize("mode", ["reject", "auth"])
async def test_refusals_and_auth_failures_never_open_the_circuit(
    config: BotConfig, fake: Any, key: str, mode: str
) -> None:
    fake.mode[key] = mode
    async with running(config) as integrations:
        outcomes = {(await call(integrations, key)).outcome for _ in range(6)}
    assert outcomes == {"rejected" if mode == "reject" else "auth_failed"}
    assert fake.hits[key] == 6


async def test_a_success_resets_the_count_of_failures_in_a_row(
    config: BotConfig, fake: Any, key: str
) -> None:
    async with running(config) as integrations:
        for mode in ["fail", "fail", "ok", "fail", "fail", "ok"]:
            fake.mode[key] = mode
            await call(integrations, key)
        assert fake.hits[key] == 6
        assert await integrations.pipeline.breaker_store.state("bank") == "closed"


async def test_failure_ratio_opens_on_a_mostly_failing_backend(
    base_url: str, make_bot: Callable[..., BotConfig], fake: Any, key: str
) -> None:
    breaker = {"failure_threshold": 100, "failure_ratio": 0.5, "min_calls": 4, "window": 30}
    config = make_bot(base_url, backend={"breaker": breaker, "retry": NO_RETRY})
    async with running(config) as integrations:
        for mode in ["ok", "fail", "ok", "fail"]:
            fake.mode[key] = mode
            await call(integrations, key)
        assert (await call(integrations, key)).error == "circuit open for backend bank"
    assert fake.hits[key] == 4


async def test_unreachable_backend_opens_the_circuit(
    refused_url: str, make_bot: Callable[..., BotConfig], key: str
) -> None:
    config = make_bot(f"http://{refused_url}", backend={"breaker": BREAKER, "retry": NO_RETRY})
    async with running(config) as integrations:
        errors = [(await call(integrations, key)).error for _ in range(4)]
    assert errors[-1] == "circuit open for backend bank"
    assert errors[0] == "could not connect to the backend"


async def test_one_backend_open_leaves_the_others_alone(
    base_url: str, make_bot: Callable[..., BotConfig], fake: Any, key: str
) -> None:
    other = {"base_url": base_url, "retry": NO_RETRY}
    ops = {"probe": {}, "other": {"backend": "other"}}
    config = make_bot(
        base_url,
        backend={"breaker": BREAKER, "retry": NO_RETRY},
        operations=ops,
        extra_backends={"other": other},
    )
    fake.mode[key] = "fail"
    async with running(config) as integrations:
        for _ in range(4):
            await call(integrations, key)
        fake.mode[key] = "ok"
        assert (await call(integrations, key)).error == "circuit open for backend bank"
        assert (await call(integrations, key, op="other")).outcome == "ok"


# --- the store contract, memory and Redis ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store_and_clock(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[BreakerStore, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryBreakerStore(clock), clock
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    connections = RedisConnections()
    try:
        yield RedisBreakerStore(connections.get(redis_url), prefix=prefix, clock=clock), clock
    finally:
        await connections.aclose()


async def test_store_contract(store_and_clock: tuple[BreakerStore, Clock]) -> None:
    """Both stores run the same state machine, step by step, on a driven clock."""
    store, clock = store_and_clock
    settings = BreakerSettings(failure_threshold=2, reset_timeout=10, half_open_max_calls=2)
    assert await store.admit("b", settings) == ("allow", None)
    assert await store.record("b", settings, failed=True, probe=False) is None
    assert await store.record("b", settings, failed=False, probe=False) is None
    assert await store.record("b", settings, failed=True, probe=False) is None
    assert await store.record("b", settings, failed=True, probe=False) == "opened"
    assert await store.state("b") == "open"
    assert await store.state("other") == "closed"
    assert await store.admit("b", settings) == ("reject", None)

    clock.now += 10
    assert await store.admit("b", settings) == ("probe", "half_open")
    assert await store.admit("b", settings) == ("probe", None)
    assert await store.admit("b", settings) == ("reject", None)  # two trials at most
    assert await store.state("b") == "half_open"
    # a call admitted before the circuit opened says nothing about now
    assert await store.record("b", settings, failed=False, probe=False) is None
    assert await store.record("b", settings, failed=True, probe=True) == "opened"
    assert await store.admit("b", settings) == ("reject", None)

    clock.now += 10
    assert await store.admit("b", settings) == ("probe", "half_open")
    clock.now += 10  # the trial never reported (worker died): trials start over
    assert await store.admit("b", settings) == ("probe", None)
    assert await store.admit("b", settings) == ("probe", None)
    assert await store.record("b", settings, failed=False, probe=True) == "closed"
    assert await store.state("b") == "closed"
    assert await store.admit("b", settings) == ("allow", None)

    await store.record("b", settings, failed=True, probe=False)
    await store.reset("b")
    assert await store.record("b", settings, failed=True, probe=False) is None  # count restarted


# --- shared through Redis -----------------------------------------------------------


@pytest.mark.redis
async def test_two_workers_share_the_circuit_through_redis(
    base_url: str,
    make_bot: Callable[..., BotConfig],
    fake: Any,
    key: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Worker 1 opens the breaker; worker 2 (its own Integrations) sees it open."""
    config = make_bot(
        base_url,
        backend={"breaker": BREAKER, "retry": NO_RETRY},
        limits={"storage_url": redis_url, "key_prefix": redis_prefix},
    )
    decisions: list[Any] = []
    fake.mode[key] = "fail"
    async with running(config) as worker1, running(config, decisions) as worker2:
        for _ in range(3):
            await call(worker1, key)
        assert fake.hits[key] == 3
        rejected = await call(worker2, key)
        assert rejected.error == "circuit open for backend bank"
        assert fake.hits[key] == 3
        assert decisions == [
            BreakerDecision(backend="bank", decision="rejected", operation="probe", shared=True)
        ]

        fake.mode[key] = "ok"
        await asyncio.sleep(RESET + 0.05)
        assert (await call(worker2, key)).outcome == "ok"  # worker 2's trial closes it
        assert (await call(worker1, key)).outcome == "ok"  # for worker 1 too
        assert fake.hits[key] == 5


async def test_unreachable_redis_falls_back_to_local_state(
    base_url: str,
    make_bot: Callable[..., BotConfig],
    fake: Any,
    key: str,
    refused_url: str,
) -> None:
    """With Redis down, turns still work (fast) and the breaker still protects locally."""
    config = make_bot(
        base_url,
        backend={"breaker": BREAKER, "retry": NO_RETRY},
        limits={"storage_url": f"redis://{refused_url}/0"},
    )
    async with running(config) as integrations:
        started = time.perf_counter()
        assert (await call(integrations, key)).outcome == "ok"
        fake.mode[key] = "fail"
        for _ in range(3):
            await call(integrations, key)
        assert (await call(integrations, key)).error == "circuit open for backend bank"
        assert time.perf_counter() - started < 2.0
    assert fake.hits[key] == 4


async def test_store_contract_failure_ratio(store_and_clock: tuple[BreakerStore, Clock]) -> None:
    """Both stores open on the failed share of calls in the window, and forget old calls."""
    store, clock = store_and_clock
    settings = BreakerSettings(failure_threshold=100, failure_ratio=0.5, min_calls=4, window=10)
    for failed in [True, False, False, False]:
        assert await store.record("b", settings, failed=failed, probe=False) is None
    clock.now += 10  # a new window: the earlier successes no longer dilute the failures
    assert await store.record("b", settings, failed=False, probe=False) is None
    assert await store.record("b", settings, failed=True, probe=False) is None
    assert await store.record("b", settings, failed=False, probe=False) is None
    assert await store.record("b", settings, failed=True, probe=False) == "opened"


@pytest.mark.redis
async def test_redis_state_lives_under_the_prefixed_key(redis_url: str, redis_prefix: str) -> None:
    connections = RedisConnections()
    client = connections.get(redis_url)
    assert connections.get(redis_url) is client  # one client per URL
    store = RedisBreakerStore(client, prefix=redis_prefix)
    settings = BreakerSettings(failure_threshold=1)
    try:
        assert await store.record("bank", settings, failed=True, probe=False) == "opened"
        assert store.key("bank") == f"{redis_prefix}:breaker:bank"
        assert await client.hget(store.key("bank"), "state") == b"open"
        assert 0 < await client.ttl(store.key("bank")) <= 3600
    finally:
        await connections.aclose()
