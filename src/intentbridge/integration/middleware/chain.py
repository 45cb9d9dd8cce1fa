"""Fold a list of middleware around an endpoint into one ``Next``.

A middleware is any ``async def step(call, next) -> Result``; the first in the list
is the outermost (it sees the call first and the result last), like starlette's.

>>> async def tag_user(call: Call, next: Next) -> Result:
...     headers = (*call.headers, ("X-On-Behalf-Of", call.user_id or "anonymous"))
...     return await next(dataclasses.replace(call, headers=headers))
>>> send = compose([ObserverMiddleware(hooks), tag_user], backend.send)
>>> result = await send(call)
"""

from __future__ import annotations

from collections.abc import Sequence

from intentbridge.types import Call, Middleware, Next, Result

__all__ = ["compose"]


def _bind(middleware: Middleware, next_: Next) -> Next:
    async def step(call: Call) -> Result:
        return await middleware(call, next_)

    return step


def compose(middlewares: Sequence[Middleware], endpoint: Next) -> Next:
    """One callable that runs ``middlewares`` in order around ``endpoint``."""
    handler = endpoint
    for middleware in reversed(middlewares):
        handler = _bind(middleware, handler)
    return handler
