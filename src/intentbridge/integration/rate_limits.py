"""Rate limits: counters in memory or shared in Redis, and the incoming-message limiter.

Three limits use the same counters (``RateLimits``, a moving window from the
``limits`` library):

- a backend's quota, ``backends.X.rate_limit: 50/second`` — outgoing calls wait
  briefly for quota, else fail as ``rate_limited`` without a call
  (``RateLimitMiddleware``);
- a per-user limit on an operation, ``operations.Y.user_rate_limit: 5/minute``
  (``RateLimitMiddleware``);
- a per-sender limit on incoming messages, ``limits.incoming_per_sender: 30/minute``
  (``IncomingLimiter``, called by the bot before it reads a message).

``limits.storage_url: redis://host:6379/0`` shares the counters between worker
processes; when Redis does not answer, counting goes on locally (and is logged) so
a Redis outage never fails a turn. ``INTENTBRIDGE_RATE_LIMITS=off`` switches all
three off (load tests and benchmarks measure the bot, not its throttles).

>>> limiter = IncomingLimiter(config.limits)
>>> if not await limiter.allow(message.sender):
...     return [Reply(config.responses.rate_limited)]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from intentbridge.integration.decisions import DecisionHook, emit_decision
from intentbridge.integration.redis import RedisConnections, is_redis_url, redis_errors
from intentbridge.project.schema import LimitSettings

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.aio.storage import Storage

__all__ = [
    "RATE_LIMITS_ENV",
    "IncomingLimiter",
    "RateLimitDecision",
    "RateLimits",
    "parse_rate",
    "rate_limits_enabled",
]

log = structlog.get_logger(__name__)

RATE_LIMITS_ENV = "INTENTBRIDGE_RATE_LIMITS"
_OFF = frozenset({"off", "0", "false", "no", "disabled"})


def rate_limits_enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``INTENTBRIDGE_RATE_LIMITS`` is ``off`` (or 0/false/no/disabled)."""
    value = (os.environ if env is None else env).get(RATE_LIMITS_ENV, "")
    return value.strip().lower() not in _OFF


def parse_rate(text: str) -> tuple[RateLimitItem, ...]:
    """The limits in ``text``: ``"5/minute"``, ``"10 per 2 minutes;100/day"``."""
    import limits

    return tuple(limits.parse_many(text))


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """Emitted to decision hooks when a rate limit made a call wait or turned it away.

    ``scope`` says which limit: the backend's quota, a user's limit on an operation,
    or a sender's limit on incoming messages. ``subject`` is the user id or sender
    (for audit; never use it as a metrics label).
    """

    scope: Literal["backend", "user", "sender"]
    decision: Literal["waited", "limited"]
    limit: str
    backend: str | None = None
    operation: str | None = None
    subject: str | None = None
    waited: float = 0.0


class RateLimits:
    """Moving-window counters in a ``limits`` storage, with a local fallback.

    >>> rate_limits = RateLimits.from_settings(config.limits, connections)
    >>> [item] = parse_rate("5/minute")
    >>> await rate_limits.hit(item, "user", "transfer", "alice")
    True

    When the storage raises (Redis down), the counters of the next ``retry_after``
    seconds are kept in this process; the outage is logged once.
    """

    def __init__(
        self,
        storage: Storage | Callable[[], Storage] | None = None,
        *,
        shared: bool = False,
        retry_after: float = 5.0,
    ) -> None:
        # ``limits`` takes a tenth of a second to import: made on first use, so a bot
        # without rate limits never pays for it. ``storage`` may be a factory for that.
        self._storage = storage
        self.shared = shared
        self.retry_after = retry_after
        self._limiter: Any = None
        self._fallback: Any = None
        self._down_until = 0.0
        self._errors = redis_errors() if shared else ()

    def __repr__(self) -> str:
        return f"RateLimits(shared={self.shared})"

    @property
    def storage(self) -> Storage:
        """The ``limits`` storage counting the events (made on first use)."""
        storage = self._storage
        if storage is None:
            from limits.aio.storage import MemoryStorage

            storage = self._storage = MemoryStorage()
        elif callable(storage):
            storage = self._storage = storage()
        return storage

    @property
    def _primary(self) -> Any:
        if self._limiter is None:
            from limits.aio.strategies import MovingWindowRateLimiter

            self._limiter = MovingWindowRateLimiter(self.storage)
        return self._limiter

    @classmethod
    def from_settings(
        cls, settings: LimitSettings, connections: RedisConnections | None = None
    ) -> RateLimits:
        """Counters where ``settings.storage_url`` says: this process, or Redis.

        Redis clients come from ``connections`` (one per URL, closed with it).
        """
        url = settings.storage_url
        if not is_redis_url(url):
            return cls()
        client = (connections or RedisConnections()).get(url)

        def redis_storage() -> Storage:
            from limits.aio.storage import RedisStorage

            # Share the client's pool (and its short timeouts) instead of a second client.
            options: dict[str, Any] = {"connection_pool": client.connection_pool}
            return RedisStorage(
                "async+" + url,
                implementation="redispy",
                key_prefix=f"{settings.key_prefix}:limits",
                **options,
            )

        return cls(redis_storage, shared=True)

    def _active(self) -> Any:
        if self._down_until == 0.0 or time.monotonic() >= self._down_until:
            return self._primary
        return self._local()

    def _local(self) -> Any:
        if self._fallback is None:
            from limits.aio.storage import MemoryStorage
            from limits.aio.strategies import MovingWindowRateLimiter

            self._fallback = MovingWindowRateLimiter(MemoryStorage())
        return self._fallback

    def _failed(self, exc: BaseException) -> None:
        if self._down_until == 0.0:
            log.warning("rate_limit_storage_unavailable", error=type(exc).__name__)
        self._down_until = time.monotonic() + self.retry_after

    async def hit(self, item: RateLimitItem, *key: str) -> bool:
        """Count one event for ``key``; False (and not counted) when over the limit."""
        limiter = self._active()
        if limiter is self._primary and self._errors:
            try:
                allowed: bool = await limiter.hit(item, *key)
            except self._errors as exc:
                self._failed(exc)
            else:
                if self._down_until:
                    log.info("rate_limit_storage_recovered")
                    self._down_until = 0.0
                return allowed
            limiter = self._local()
        result: bool = await limiter.hit(item, *key)
        return result

    async def reset_in(self, item: RateLimitItem, *key: str) -> float:
        """Seconds until ``key`` has room for one more event under ``item``."""
        limiter = self._active()
        try:
            stats = await limiter.get_window_stats(item, *key)
        except self._errors as exc:
            self._failed(exc)
            return 0.0
        if stats.remaining > 0:
            return 0.0
        return max(0.0, float(stats.reset_time) - time.time())

    async def clear(self, item: RateLimitItem, *key: str) -> None:
        """Forget the events counted for ``key`` under ``item``."""
        await self._active().clear(item, *key)


class IncomingLimiter:
    """Limit how many messages one sender may send (``limits.incoming_per_sender``).

    ``storage`` is the ``RateLimits`` to count in (share ``Integrations.rate_limits``
    to use the same Redis connection); without it, one is made from ``settings`` and
    closed by ``aclose``. With no limit configured, or ``INTENTBRIDGE_RATE_LIMITS=off``,
    ``allow`` is always True and costs nothing.

    >>> limiter = IncomingLimiter(config.limits, integrations.rate_limits)
    >>> await limiter.allow("alice")
    True
    """

    def __init__(
        self,
        settings: LimitSettings,
        storage: RateLimits | None = None,
        *,
        hooks: Sequence[DecisionHook] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = tuple(hooks)
        text = settings.incoming_per_sender
        self.enabled = text is not None and rate_limits_enabled(env)
        self._items = parse_rate(text) if text is not None and self.enabled else ()
        self._connections: RedisConnections | None = None
        if storage is None and self.enabled:
            self._connections = RedisConnections()
            storage = RateLimits.from_settings(settings, self._connections)
        self.storage = storage

    def __repr__(self) -> str:
        return f"IncomingLimiter(limit={self.settings.incoming_per_sender!r}, on={self.enabled})"

    async def allow(self, sender: str) -> bool:
        """Whether ``sender`` may send another message now (and count it if so)."""
        if not self._items or self.storage is None:
            return True
        for item in self._items:
            if not await self.storage.hit(item, "sender", sender):
                if self.hooks:
                    decision = RateLimitDecision(
                        scope="sender",
                        decision="limited",
                        limit=str(self.settings.incoming_per_sender),
                        subject=sender,
                    )
                    await emit_decision(self.hooks, decision)
                return False
        return True

    async def aclose(self) -> None:
        """Close the Redis connection this limiter opened (if it opened one)."""
        if self._connections is not None:
            await self._connections.aclose()
