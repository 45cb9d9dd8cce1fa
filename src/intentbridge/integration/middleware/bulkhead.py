"""``BulkheadMiddleware``: cap the calls in flight to one backend.

A slow backend otherwise collects every waiting turn (and socket, and worker slot)
until the whole bot is waiting on it. With a cap, at most ``max_concurrency`` calls
wait on it; the next one waits for a free slot up to ``wait`` seconds (never past the
turn's deadline, see ``intentbridge.integration.deadline``) and otherwise answers at
once with outcome ``unavailable`` ("too many concurrent calls"), and calls to every
other backend go on as before.

>>> compose([BulkheadMiddleware("bank", max_concurrency=20, wait=1.0)], client.send)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from intentbridge.integration.deadline import time_left
from intentbridge.integration.decisions import DecisionHook, emit_decision
from intentbridge.types import Call, Next, Result

__all__ = ["BulkheadDecision", "BulkheadMiddleware"]


@dataclass(frozen=True, slots=True)
class BulkheadDecision:
    """Emitted to decision hooks when a call found no free slot in time."""

    backend: str
    operation: str
    decision: Literal["rejected"]
    max_concurrency: int
    waited: float
    """Seconds the call waited for a slot before giving up."""


class BulkheadMiddleware:
    """At most ``max_concurrency`` calls at once; others wait ``wait`` seconds at most."""

    def __init__(
        self,
        backend: str,
        max_concurrency: int = 20,
        wait: float = 1.0,
        *,
        hooks: Sequence[DecisionHook] = (),
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("BulkheadMiddleware needs max_concurrency of at least 1")
        self.backend = backend
        self.max_concurrency = max_concurrency
        self.wait = wait
        self.hooks = tuple(hooks)
        self._slots = asyncio.Semaphore(max_concurrency)

    def __repr__(self) -> str:
        return f"BulkheadMiddleware(backend={self.backend!r}, max={self.max_concurrency})"

    @property
    def in_flight(self) -> int:
        """Calls holding a slot right now."""
        return self.max_concurrency - self._slots._value

    async def __call__(self, call: Call, call_next: Next) -> Result:
        slots = self._slots
        if slots.locked():
            started = time.perf_counter()
            wait = self.wait
            left = time_left()
            if left is not None:
                wait = min(wait, left)
            try:
                if wait <= 0:
                    raise TimeoutError
                async with asyncio.timeout(wait):
                    await slots.acquire()
            except TimeoutError:
                return await self._reject(call, time.perf_counter() - started)
        else:
            await slots.acquire()  # a free slot: returns without suspending
        try:
            return await call_next(call)
        finally:
            slots.release()

    async def _reject(self, call: Call, waited: float) -> Result:
        if self.hooks:
            decision = BulkheadDecision(
                backend=self.backend,
                operation=call.operation,
                decision="rejected",
                max_concurrency=self.max_concurrency,
                waited=waited,
            )
            await emit_decision(self.hooks, decision)
        return Result(
            call=call,
            outcome="unavailable",
            error=f"too many concurrent calls to backend {self.backend}",
            latency_ms=waited * 1000,
            attempts=0,
        )
