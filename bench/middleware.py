"""Middleware overhead: what the resilience chain adds to each outgoing call.

    python bench/middleware.py [--calls 200000]

Each chain runs around an endpoint that answers at once (no HTTP), so the time per
call is the chain's own cost. Rows: no middleware; each built-in alone; the default
chain with nothing configured (breaker + bulkhead + retry; rate_limit drops out);
with a backend quota and a per-user limit in memory; and with state in Redis when one
answers at ``INTENTBRIDGE_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``). The
table is printed and written to ``bench/results/middleware.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from intentbridge.integration.backend import BackendResult
from intentbridge.integration.middleware.breaker import BreakerMiddleware
from intentbridge.integration.middleware.bulkhead import BulkheadMiddleware
from intentbridge.integration.middleware.chain import compose
from intentbridge.integration.middleware.retry import RetryMiddleware
from intentbridge.integration.pipeline import Pipeline
from intentbridge.integration.redis import RedisConnections
from intentbridge.project.schema import BotConfig
from intentbridge.types import Call, Middleware, Result

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "middleware.md"
REDIS = os.environ.get("INTENTBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def config(**backend: Any) -> BotConfig:
    limits = backend.pop("limits", {})
    user_limit = backend.pop("user_rate_limit", None)
    op: dict[str, Any] = {"backend": "bank", "path": "/x"}
    if user_limit:
        op["user_rate_limit"] = user_limit
    return BotConfig.model_validate(
        {
            "backends": {"bank": {"base_url": "http://127.0.0.1:1", **backend}},
            "operations": {"op": op},
            "limits": limits,
        }
    )


async def measure(chain: list[Middleware], calls: int) -> float:
    call = Call(backend="bank", operation="op", method="GET", path="/x", user_id="u")
    answer = BackendResult(call=call, outcome="ok", status_code=200)

    async def endpoint(_: Call) -> Result:
        return answer

    handler = compose(chain, endpoint)
    for _ in range(1000):
        await handler(call)
    started = time.perf_counter()
    for _ in range(calls):
        await handler(call)
    return (time.perf_counter() - started) / calls * 1e6


async def redis_up(connections: RedisConnections) -> bool:
    try:
        return bool(await connections.get(REDIS).ping())
    except Exception:
        return False


async def main(calls: int) -> list[tuple[str, float]]:
    connections = RedisConnections()
    rows: list[tuple[str, float]] = []
    try:
        rows.append(("no middleware", await measure([], calls)))
        rows.append(("breaker (memory)", await measure([BreakerMiddleware("bank")], calls)))
        rows.append(("bulkhead", await measure([BulkheadMiddleware("bank")], calls)))
        rows.append(("retry", await measure([RetryMiddleware()], calls)))
        default = Pipeline(config(), connections=connections).middleware_for("op")
        rows.append(("default chain, nothing configured", await measure(default, calls)))
        # A quota no benchmark reaches: measures the counting, not the waiting.
        limited = config(rate_limit="1000000/second", user_rate_limit="1000000/minute")
        chain = Pipeline(limited, connections=connections).middleware_for("op")
        # The moving window keeps one entry per event in the window: fewer calls, so
        # the lists stay near a real quota's size.
        rows.append(
            ("default chain + quota + user limit (memory)", await measure(chain, calls // 20))
        )
        if await redis_up(connections):
            prefix = f"intentbridge-bench-{uuid.uuid4().hex[:8]}"
            shared = {"storage_url": REDIS, "key_prefix": prefix}
            chain = Pipeline(config(limits=shared), connections=connections).middleware_for("op")
            few = max(calls // 20, 1000)
            rows.append(("default chain, breaker in Redis", await measure(chain, few)))
            chain = Pipeline(
                config(limits=shared, rate_limit="100000000/second"), connections=connections
            ).middleware_for("op")
            rows.append(("default chain + quota, all in Redis", await measure(chain, few)))
            client = connections.get(REDIS)
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
    finally:
        await connections.aclose()
    return rows


def table(rows: list[tuple[str, float]]) -> str:
    lines = ["| chain | µs per call |", "| --- | ---: |"]
    lines += [f"| {name} | {micros:.2f} |" for name, micros in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    os.environ.pop("INTENTBRIDGE_RATE_LIMITS", None)
    text = table(asyncio.run(main(args.calls)))
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
