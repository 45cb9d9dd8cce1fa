"""Decision hooks: how retries, breakers, bulkheads and rate limits tell the world.

Each resilience step emits a small frozen record when it decides something
(``RetryDecision``, ``BreakerDecision``, ``BulkheadDecision``, ``RateLimitDecision``).
Logging, metrics, tracing and audit subscribe with one hook that receives them all
and picks what it cares about::

    def count(decision: object) -> None:
        if isinstance(decision, BreakerDecision):
            BREAKER_TRANSITIONS.labels(decision.backend, decision.decision).inc()

    Integrations.from_config(config, decision_hooks=[count])

A hook may be sync or async. A hook that raises is logged and never breaks a call.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

__all__ = ["DecisionHook", "emit_decision"]

log = structlog.get_logger(__name__)

DecisionHook = Callable[[Any], Awaitable[None] | None]
"""Receives every decision record; ``isinstance`` tells which kind it is."""


async def emit_decision(hooks: Sequence[DecisionHook], decision: object) -> None:
    """Hand ``decision`` to each hook; a failing hook is logged and skipped."""
    for hook in hooks:
        try:
            returned = hook(decision)
            if inspect.isawaitable(returned):
                await returned
        except Exception:
            log.exception("decision_hook_failed", hook=repr(hook), decision=type(decision).__name__)
