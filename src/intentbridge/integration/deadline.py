"""Per-call deadlines carried in a context variable.

A deadline is an absolute ``time.monotonic()`` value. Whoever knows how long the
user can wait (a channel, the dialogue turn, ``TimeoutMiddleware``) opens a scope;
everything below reads it without being passed it: the retry middleware never sleeps
past it and the backend client clips its HTTP timeout to the time left.

>>> with deadline_scope(2.0):
...     left = time_left()   # about 2.0
>>> time_left() is None      # no deadline outside a scope
True
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_deadline", "deadline_scope", "time_left"]

_deadline: ContextVar[float | None] = ContextVar("intentbridge_deadline", default=None)


@contextmanager
def deadline_scope(seconds: float) -> Iterator[float]:
    """Run the block with a deadline ``seconds`` from now; yields the absolute deadline.

    Scopes only ever tighten: an inner scope longer than the outer one keeps the
    outer deadline, so a middleware cannot grant itself more time than its caller has.
    """
    deadline = time.monotonic() + seconds
    outer = _deadline.get()
    if outer is not None and outer < deadline:
        deadline = outer
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def current_deadline() -> float | None:
    """The absolute ``time.monotonic()`` deadline in force, or None."""
    return _deadline.get()


def time_left() -> float | None:
    """Seconds until the deadline in force (may be negative), or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
