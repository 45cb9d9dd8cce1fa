"""``BreakerMiddleware``: stop calling a backend that keeps failing, try again later.

While a backend's circuit is open, calls answer at once with outcome ``unavailable``
("circuit open for backend bank") and nothing is sent, so a dead backend costs a turn
nothing and gets room to recover. Only failures that say the backend is unwell count:
outcomes ``timeout``, ``unavailable`` and ``outcome_unknown`` of answers that came
from the backend client (our own bulkhead or rate-limit refusals never do). See
``BreakerSettings`` for the thresholds and ``breaker_state`` for where state lives.

>>> breaker = BreakerMiddleware("bank", BreakerSettings(failure_threshold=3),
...                             MemoryBreakerStore(), hooks=[print])
>>> compose([breaker, RetryMiddleware(retry_settings)], client.send)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from intentbridge.integration.backend import BackendResult
from intentbridge.integration.breaker_state import (
    BreakerDecision,
    BreakerStore,
    MemoryBreakerStore,
)
from intentbridge.integration.decisions import DecisionHook, emit_decision
from intentbridge.project.schema import BreakerSettings
from intentbridge.types import Call, Next, Outcome, Result

__all__ = ["BREAKER_FAILURES", "BreakerMiddleware"]

BREAKER_FAILURES: frozenset[Outcome] = frozenset({"timeout", "unavailable", "outcome_unknown"})
"""Outcomes that count against a backend's circuit."""


class BreakerMiddleware:
    """A circuit breaker for one backend, its state kept in ``store``."""

    def __init__(
        self,
        backend: str,
        settings: BreakerSettings | None = None,
        store: BreakerStore | None = None,
        *,
        hooks: Sequence[DecisionHook] = (),
    ) -> None:
        self.backend = backend
        self.settings = settings or BreakerSettings()
        self.store: BreakerStore = store if store is not None else MemoryBreakerStore()
        self.hooks = tuple(hooks)
        self._shared = bool(getattr(self.store, "shared", False))

    def __repr__(self) -> str:
        return f"BreakerMiddleware(backend={self.backend!r}, store={self.store!r})"

    async def __call__(self, call: Call, call_next: Next) -> Result:
        admission, transition = await self.store.admit(self.backend, self.settings)
        if transition is not None:
            await self._emit(transition, call)
        if admission == "reject":
            await self._emit("rejected", call)
            return Result(
                call=call,
                outcome="unavailable",
                error=f"circuit open for backend {self.backend}",
                attempts=0,
            )
        result = await call_next(call)
        probe = admission == "probe"
        from_backend = isinstance(result, BackendResult)
        if not from_backend and not probe:
            return result  # refused before reaching the backend: says nothing about it
        # A trial call refused on our side must still end the trial, or half-open
        # would wait for a verdict that never comes; count it as inconclusive-bad.
        failed = result.outcome in BREAKER_FAILURES or not from_backend
        transition = await self.store.record(
            self.backend, self.settings, failed=failed, probe=probe
        )
        if transition is not None:
            await self._emit(transition, call)
        return result

    async def _emit(
        self, decision: Literal["opened", "half_open", "closed", "rejected"], call: Call
    ) -> None:
        if self.hooks:
            record = BreakerDecision(
                backend=self.backend,
                decision=decision,
                operation=call.operation,
                shared=self._shared,
            )
            await emit_decision(self.hooks, record)
