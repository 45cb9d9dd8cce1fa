"""Middleware around every outgoing call, one per module, folded by ``compose``.

A middleware is any async callable ``(call, call_next) -> Result``: a function or an
object with ``async __call__``. Settings go in ``__init__``. Write your own::

    async def deny_at_night(call: Call, call_next: Next) -> Result:
        if call.moves_money and is_night():
            return Result(call=call, outcome="denied", error="transfers paused at night")
        return await call_next(call)

    Integrations.from_config(config, middleware=[deny_at_night])
"""

from intentbridge.integration.middleware.breaker import BreakerMiddleware
from intentbridge.integration.middleware.bulkhead import BulkheadDecision, BulkheadMiddleware
from intentbridge.integration.middleware.chain import compose
from intentbridge.integration.middleware.observer import ObserverMiddleware
from intentbridge.integration.middleware.rate_limit import RateLimitMiddleware
from intentbridge.integration.middleware.retry import (
    RetryDecision,
    RetryMiddleware,
    default_is_idempotent,
    fast_retries,
    set_testing,
)
from intentbridge.integration.middleware.timeout import TimeoutMiddleware

__all__ = [
    "BreakerMiddleware",
    "BulkheadDecision",
    "BulkheadMiddleware",
    "ObserverMiddleware",
    "RateLimitMiddleware",
    "RetryDecision",
    "RetryMiddleware",
    "TimeoutMiddleware",
    "compose",
    "default_is_idempotent",
    "fast_retries",
    "set_testing",
]
