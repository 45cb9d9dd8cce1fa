"""Shared Redis connections: one ``redis.asyncio.Redis`` per URL, short timeouts.

Rate-limit counters, breaker state (and later locks and the token cache) all talk to
the same Redis; each URL gets one client with one connection pool, however many
parts of the bot use it. Timeouts are short on purpose: Redis answers on loopback or
the LAN in a millisecond, and a Redis that does not answer must cost a turn a
fraction of a second (callers then fall back to local state), never the whole turn.

>>> connections = RedisConnections()
>>> client = connections.get("redis://127.0.0.1:6379/0")
>>> await client.ping()
>>> await connections.aclose()

``redis`` is an optional dependency (``pip install 'intentbridge[redis]'``), imported
only when a ``redis://`` URL is used.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from intentbridge.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["REDIS_SCHEMES", "RedisConnections", "is_redis_url", "redis_errors"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(url: str) -> bool:
    """Whether ``url`` names a Redis server (``redis://``, ``rediss://``, ``unix://``)."""
    return url.startswith(REDIS_SCHEMES)


def redis_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis did not answer properly" (to fall back on).

    ``OSError`` and ``TimeoutError`` too: a refused or reset socket can surface as
    either before redis-py wraps it.
    """
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - no redis, no Redis calls to fail
        return (OSError, TimeoutError)
    return (RedisError, OSError, TimeoutError)


class RedisConnections:
    """One ``redis.asyncio.Redis`` per URL, made on first use, closed by ``aclose``.

    ``socket_timeout`` bounds each command and ``connect_timeout`` each connection
    attempt; redis-py's own retries are off, because the callers already have a
    local fallback and a retried command would only double the wait.
    """

    def __init__(self, *, socket_timeout: float = 0.25, connect_timeout: float = 0.25) -> None:
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self._clients: dict[str, Redis] = {}

    def __repr__(self) -> str:
        # URLs may carry a password: say how many, not which.
        return f"RedisConnections(clients={len(self._clients)})"

    def get(self, url: str) -> Redis:
        """The client for ``url`` (made without connecting; the first command connects)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._make(url)
        return client

    def _make(self, url: str) -> Redis:
        if not is_redis_url(url):
            raise ConfigError(
                f"not a Redis URL: {url.split('://', 1)[0]!r}://…",
                hint="use redis://host:6379/0, rediss://… or unix:///path/to/redis.sock",
            )
        try:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:
            raise MissingExtraError("Redis-backed state", "redis") from None
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 30,
        }
        return Redis.from_url(url, **options)

    async def aclose(self) -> None:
        """Close every client and its connection pool."""
        clients, self._clients = list(self._clients.values()), {}
        results = await asyncio.gather(
            *(client.aclose(close_connection_pool=True) for client in clients),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
