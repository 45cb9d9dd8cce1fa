"""``RetryMiddleware``: try again when trying again is safe and may help.

A call is retried only when

- it is safe to repeat: GET, PUT, DELETE, or it carries an idempotency key (the
  backend then deduplicates), or ``is_idempotent(call)`` says so;
- the failure is transient: outcome ``timeout``, ``rate_limited``, ``unavailable``,
  or ``outcome_unknown`` (this one only with an idempotency key: repeating with the
  same key tells us what happened), and, when the backend answered, its status is
  408, 429, 502, 503 or 504. Other 4xx and 500 are never retried.

Waits grow exponentially from ``settings.backoff`` with random jitter (tenacity's
``wait_exponential`` + ``wait_random``), capped at ``settings.max_backoff``. A ``Retry-After``
from the backend replaces the wait when it fits the budget: the time left before the
deadline (see ``intentbridge.integration.deadline``), or ``max_backoff`` when there is
none; a longer ``Retry-After`` ends the retries. No wait ever runs past the deadline.

Tests run retries without sleeping::

    with fast_retries() as sleeps:   # or set_testing(True)
        result = await integrations.execute(...)
    assert sleeps == [2.0]           # what the middleware asked to sleep

>>> compose([RetryMiddleware(backend.retry, hooks=[print])], client.send)
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    wait_exponential,
    wait_random,
)

from intentbridge.integration.backend import retry_after_of
from intentbridge.integration.deadline import time_left
from intentbridge.project.schema import RetrySettings
from intentbridge.types import Call, Next, Outcome, Result

__all__ = [
    "RETRYABLE_OUTCOMES",
    "RETRYABLE_STATUS",
    "RetryDecision",
    "RetryMiddleware",
    "default_is_idempotent",
    "fast_retries",
    "set_testing",
]

RETRYABLE_OUTCOMES: frozenset[Outcome] = frozenset(
    {"timeout", "rate_limited", "unavailable", "outcome_unknown"}
)
RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})

# When not None, retries record their waits here instead of sleeping.
_testing_sleeps: list[float] | None = None


def set_testing(on: bool) -> list[float] | None:
    """Switch retries to test mode (no real sleeps; requested waits are recorded).

    Returns the list that collects the waits while on, None when switched off.
    """
    global _testing_sleeps  # noqa: PLW0603 - a process-wide switch, like stamina's
    _testing_sleeps = [] if on else None
    return _testing_sleeps


@contextmanager
def fast_retries() -> Iterator[list[float]]:
    """Run the block with retries that record their waits instead of sleeping."""
    global _testing_sleeps  # noqa: PLW0603 - a process-wide switch, like stamina's
    previous = _testing_sleeps
    sleeps: list[float] = []
    _testing_sleeps = sleeps
    try:
        yield sleeps
    finally:
        _testing_sleeps = previous


async def _sleep(seconds: float) -> None:
    sleeps = _testing_sleeps
    if sleeps is not None:
        sleeps.append(seconds)
        await asyncio.sleep(0)  # still yield, so concurrency behaves as it would
        return
    await asyncio.sleep(seconds)


def default_is_idempotent(call: Call) -> bool:
    """GET, PUT and DELETE, and any call carrying an idempotency key."""
    return call.method in ("GET", "PUT", "DELETE") or call.idempotency_key is not None


@dataclasses.dataclass(frozen=True, slots=True)
class RetryDecision:
    """Emitted to hooks before each retry: what failed and how long we will wait."""

    call: Call
    attempt: int
    """The attempt that just failed (1 = the first)."""
    outcome: Outcome
    status_code: int | None
    wait: float


RetryHook = Callable[[RetryDecision], Awaitable[None] | None]


NOT_AN_ANSWER: frozenset[str] = frozenset({"timeout", "unavailable", "rate_limited", "error"})
"""Outcomes that say nothing about whether an earlier attempt of the same call acted."""


class RetryMiddleware:
    """Retry safe calls on transient failures, with jittered exponential backoff.

    ``Result.attempts`` of the returned result counts the attempts made and its
    ``latency_ms`` covers all of them, waits included.
    """

    def __init__(
        self,
        settings: RetrySettings | None = None,
        *,
        is_idempotent: Callable[[Call], bool] | None = None,
        hooks: Sequence[RetryHook] = (),
    ) -> None:
        self.settings = settings or RetrySettings()
        self.is_idempotent = is_idempotent or default_is_idempotent
        self.hooks = tuple(hooks)
        # backoff, 2×backoff, 4×backoff… plus up to one backoff of jitter, capped.
        # (Composed rather than wait_exponential_jitter, whose arguments were renamed
        # across tenacity versions.)
        self._wait_backoff = wait_exponential(
            multiplier=self.settings.backoff, max=self.settings.max_backoff
        ) + wait_random(0, self.settings.backoff)

    def retryable(self, call: Call, result: Result) -> bool:
        """Whether ``result`` of ``call`` is worth another attempt."""
        if result.outcome not in RETRYABLE_OUTCOMES:
            return False
        if result.status_code is not None and result.status_code not in RETRYABLE_STATUS:
            return False
        if result.outcome == "outcome_unknown":
            return call.idempotency_key is not None
        return self.is_idempotent(call)

    async def __call__(self, call: Call, call_next: Next) -> Result:
        started = time.perf_counter()
        first = await call_next(call)
        # The common case (success, or nothing to retry) never touches tenacity.
        if self.settings.attempts <= 1 or not self.retryable(call, first):
            return first

        pending = [first]
        attempts = 1
        maybe_happened = first.outcome == "outcome_unknown"

        async def attempt() -> Result:
            nonlocal attempts, maybe_happened
            if pending:
                return pending.pop()
            attempts += 1
            result = await call_next(call)
            maybe_happened = maybe_happened or result.outcome == "outcome_unknown"
            return result

        async def before_sleep(state: RetryCallState) -> None:
            if not self.hooks:
                return
            failed: Result = state.outcome.result()  # type: ignore[union-attr]
            decision = RetryDecision(
                call=call,
                attempt=state.attempt_number,
                outcome=failed.outcome,
                status_code=failed.status_code,
                wait=state.upcoming_sleep,
            )
            for hook in self.hooks:
                returned = hook(decision)
                if inspect.isawaitable(returned):
                    await returned

        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_result(lambda result: self.retryable(call, result)),
            sleep=_sleep,
            before_sleep=before_sleep,
            retry_error_callback=_last_result,
        )
        result: Result = await retrying(attempt)
        outcome = result.outcome
        if maybe_happened and outcome in NOT_AN_ANSWER:
            # an earlier attempt may have acted; a later one that never reached the
            # backend (503, 429, refused, timeout) cannot say it did not
            outcome = "outcome_unknown"
        return dataclasses.replace(
            result,
            outcome=outcome,
            attempts=attempts,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _wait(self, state: RetryCallState) -> float:
        result: Result = state.outcome.result()  # type: ignore[union-attr]
        retry_after = retry_after_of(result)
        if retry_after is not None:
            return retry_after
        return min(float(self._wait_backoff(state)), self.settings.max_backoff)

    def _stop(self, state: RetryCallState) -> bool:
        # tenacity computes the wait before asking whether to stop.
        if state.attempt_number >= self.settings.attempts:
            return True
        wait = state.upcoming_sleep
        left = time_left()
        result: Result = state.outcome.result()  # type: ignore[union-attr]
        if retry_after_of(result) is not None:
            budget = left if left is not None else self.settings.max_backoff
            if wait > budget:
                return True
        # Waking up at or after the deadline leaves no time for another attempt.
        return left is not None and wait >= left


def _last_result(state: RetryCallState) -> Result:
    result: Result = state.outcome.result()  # type: ignore[union-attr]
    return result
