"""``TimeoutMiddleware``: give everything below it a deadline.

>>> compose([TimeoutMiddleware(8.0), RetryMiddleware(settings)], backend.send)

Retries below it never sleep past the deadline and the backend client clips its HTTP
timeouts to the time left. An outer deadline that is sooner wins.
"""

from __future__ import annotations

from intentbridge.integration.deadline import deadline_scope
from intentbridge.types import Call, Next, Result

__all__ = ["TimeoutMiddleware"]


class TimeoutMiddleware:
    """Run the rest of the chain within ``seconds`` (total, across retries)."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("TimeoutMiddleware needs a positive number of seconds")
        self.seconds = seconds

    async def __call__(self, call: Call, call_next: Next) -> Result:
        with deadline_scope(self.seconds):
            return await call_next(call)
