"""ASGI middleware that counts every HTTP response and unhandled error by route.

Labels are the route's template, never the path as requested: ``/conversations/alice/
outbox`` counts under ``/conversations/{sender}/outbox``, and a path no route serves
under ``unmatched``, so neither a user nor a scanner can add series.

>>> app.add_middleware(HttpMetricsMiddleware)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from intentbridge.observability.metrics import (
    UNMATCHED_ROUTE,
    count_http_exception,
    count_http_response,
)

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Send = Callable[[_Message], Awaitable[None]]

__all__ = ["HttpMetricsMiddleware", "route_label"]

_SERVER_ERROR = 500


def route_label(scope: _Scope) -> str:
    """The template of the route that served ``scope`` (set by the router), or ``unmatched``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Count each HTTP response by route and status class, and each unhandled exception.

    An exception raised before the response started becomes the 500 the server then
    sends, so it counts as a ``5xx`` response too; one raised while a response streams
    counts under the status that already went out. Either way each request counts as
    exactly one response.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: Any, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def send_counted(message: _Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except Exception:
            count_http_exception(route_label(scope))
            count_http_response(route_label(scope), _SERVER_ERROR if status is None else status)
            raise
        if status is not None:
            count_http_response(route_label(scope), status)
