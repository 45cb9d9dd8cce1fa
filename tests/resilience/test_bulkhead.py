"""Bulkheads: a slow backend cannot starve the others; over the cap, calls wait briefly."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from intentbridge.integration import Integrations, deadline_scope
from intentbridge.integration.middleware.bulkhead import BulkheadDecision, BulkheadMiddleware
from intentbridge.project.schema import BotConfig
from intentbridge.types import Call, Result


async def test_slow_backend_does_not_slow_calls_to_another(
    base_url: str, make_bot: Callable[..., BotConfig], fake: Any, key: str
) -> None:
    """20 calls in flight to A (3 s each) fill its slots; B keeps its latency, and the
    21st call to A is turned away quickly instead of queueing behind them."""
    slow = {
        "backend": "slow",
        "path": "/slow/{key}",
        "query": {"delay": "3"},
    }
    config = make_bot(
        base_url,
        operations={"probe": {}, "slow_call": slow},
        extra_backends={"slow": {"base_url": base_url, "timeout": 10, "concurrency_wait": 0.2}},
    )
    decisions: list[Any] = []
    async with Integrations.from_config(config, decision_hooks=[decisions.append]) as ints:
        assert config.backends["slow"].max_concurrency == 20  # the default cap

        async def a_call() -> Result:
            return await ints.execute("slow_call", {"key": key}, conversation_id="a", user_id="ua")

        in_flight = [asyncio.create_task(a_call()) for _ in range(20)]
        for _ in range(500):  # the server runs in another thread: poll its counter
            if fake.hits[key] >= 20:
                break
            await asyncio.sleep(0.01)
        assert fake.hits[key] == 20

        started = time.perf_counter()
        overflow = await a_call()
        assert overflow.outcome == "unavailable"
        assert overflow.error == "too many concurrent calls to backend slow"
        assert time.perf_counter() - started < 1.0
        assert fake.hits[key] == 20

        latencies = []
        for _ in range(20):
            t0 = time.perf_counter()
            result = await ints.execute(
                "probe", {"key": key + "-b"}, conversation_id="b", user_id="ub"
            )
            latencies.append(time.perf_counter() - t0)
            assert result.outcome == "ok"
        assert statistics.median(latencies) < 0.1
        assert not any(task.done() for task in in_flight)  # A's calls really were in flight

        results = await asyncio.gather(*in_flight)
    assert {r.outcome for r in results} == {"ok"}
    assert [type(d) for d in decisions] == [BulkheadDecision]


async def test_a_waiting_call_gets_the_next_free_slot() -> None:
    bulkhead = BulkheadMiddleware("bank", max_concurrency=1, wait=1.0)
    release = asyncio.Event()
    call = Call(backend="bank", operation="op", method="GET", path="/")

    async def endpoint(c: Call) -> Result:
        await release.wait()
        return Result(call=c, outcome="ok")

    first = asyncio.create_task(bulkhead(call, endpoint))
    await asyncio.sleep(0)
    second = asyncio.create_task(bulkhead(call, endpoint))
    await asyncio.sleep(0.05)
    assert bulkhead.in_flight == 1 and not second.done()
    release.set()
    assert (await first).outcome == "ok"
    assert (await second).outcome == "ok"
    assert bulkhead.in_flight == 0


async def test_the_wait_for_a_slot_never_runs_past_the_deadline() -> None:
    bulkhead = BulkheadMiddleware("bank", max_concurrency=1, wait=5.0)
    release = asyncio.Event()
    call = Call(backend="bank", operation="op", method="GET", path="/")

    async def endpoint(c: Call) -> Result:
        await release.wait()
        return Result(call=c, outcome="ok")

    holder = asyncio.create_task(bulkhead(call, endpoint))
    await asyncio.sleep(0)
    started = time.perf_counter()
    with deadline_scope(0.1):
        result = await bulkhead(call, endpoint)
    assert result.outcome == "unavailable"
    assert 0.05 < time.perf_counter() - started < 0.5
    release.set()
    await holder
