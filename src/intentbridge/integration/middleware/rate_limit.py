"""``RateLimitMiddleware``: a backend's quota and per-user limits on operations.

Two checks, both before anything is sent:

1. the user's limit on this operation (``operations.Y.user_rate_limit``, counted per
   ``call.user_id``, else per conversation): over it, the call answers at once with
   outcome ``rate_limited`` ("too many transfer_money requests from this user");
2. the backend's quota (``backends.X.rate_limit``): over it, the call waits for room
   up to ``max_wait`` seconds and never past the turn's deadline, else answers
   ``rate_limited`` ("outgoing rate limit for backend bank reached") — a refusal the
   backend would have given anyway, without spending its quota or a retry on it.

>>> limit = RateLimitMiddleware("bank", RateLimits(), quota="50/second",
...                             user_limits={"transfer_money": "5/minute"})
>>> compose([limit, RetryMiddleware(settings)], client.send)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Literal

from intentbridge.integration.deadline import time_left
from intentbridge.integration.decisions import DecisionHook, emit_decision
from intentbridge.integration.rate_limits import RateLimitDecision, RateLimits, parse_rate
from intentbridge.types import Call, Next, Result

__all__ = ["RateLimitMiddleware"]

_MIN_SLEEP = 0.001  # the window may free a hair after its reset time; never spin


class RateLimitMiddleware:
    """Per-user limits on operations and the backend's quota, counted in ``rate_limits``."""

    def __init__(
        self,
        backend: str,
        rate_limits: RateLimits,
        *,
        quota: str | None = None,
        max_wait: float = 1.0,
        user_limits: Mapping[str, str] | None = None,
        hooks: Sequence[DecisionHook] = (),
    ) -> None:
        self.backend = backend
        self.rate_limits = rate_limits
        self.quota = quota
        self.max_wait = max_wait
        self.user_limits = dict(user_limits or {})
        self.hooks = tuple(hooks)
        self._quota = parse_rate(quota) if quota else ()
        self._user = {op: parse_rate(text) for op, text in self.user_limits.items()}

    def __repr__(self) -> str:
        return f"RateLimitMiddleware(backend={self.backend!r}, quota={self.quota!r})"

    async def __call__(self, call: Call, call_next: Next) -> Result:
        items = self._user.get(call.operation)
        if items:
            subject = call.user_id or call.conversation_id
            if subject is not None:
                for item in items:
                    if not await self.rate_limits.hit(item, "user", call.operation, subject):
                        return await self._limited_user(call, subject)
        if self._quota:
            waited = 0.0
            for item in self._quota:
                while not await self.rate_limits.hit(item, "backend", self.backend):
                    wait = max(
                        await self.rate_limits.reset_in(item, "backend", self.backend), _MIN_SLEEP
                    )
                    budget = self.max_wait - waited
                    left = time_left()
                    if left is not None:
                        budget = min(budget, left)
                    if wait >= budget:
                        return await self._limited_backend(call, waited)
                    await asyncio.sleep(wait)
                    waited += wait
            if waited and self.hooks:
                await self._emit("backend", "waited", str(self.quota), call, waited=waited)
        return await call_next(call)

    async def _limited_user(self, call: Call, subject: str) -> Result:
        limit = self.user_limits[call.operation]
        await self._emit("user", "limited", limit, call, subject=subject)
        return Result(
            call=call,
            outcome="rate_limited",
            error=f"too many {call.operation} requests from this user (limit {limit})",
            attempts=0,
        )

    async def _limited_backend(self, call: Call, waited: float) -> Result:
        await self._emit("backend", "limited", str(self.quota), call, waited=waited)
        return Result(
            call=call,
            outcome="rate_limited",
            error=f"outgoing rate limit for backend {self.backend} reached ({self.quota})",
            latency_ms=waited * 1000,
            attempts=0,
        )

    async def _emit(
        self,
        scope: Literal["backend", "user"],
        decision: Literal["waited", "limited"],
        limit: str,
        call: Call,
        *,
        subject: str | None = None,
        waited: float = 0.0,
    ) -> None:
        if not self.hooks:
            return
        record = RateLimitDecision(
            scope=scope,
            decision=decision,
            limit=limit,
            backend=self.backend,
            operation=call.operation,
            subject=subject,
            waited=waited,
        )
        await emit_decision(self.hooks, record)
