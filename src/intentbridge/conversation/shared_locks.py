"""A conversation lock shared by every worker, in Redis.

With ``limits.storage_url: redis://…`` several bot processes share breaker state and
rate limits; this lets them share the per-conversation lock too, so two messages of
one sender that reach two workers at once are handled one after the other instead of
both saving the conversation (the later save winning).

The lock is ``SET key token NX PX lease``: only one holder, and a holder that died
lets go when its lease runs out. Release deletes the key only if it still holds this
holder's token (a Lua compare-and-delete), so a turn that outlived its lease never
frees someone else's lock. Waiting polls with a short, growing pause, bounded by the
lock timeout like the in-process lock.

Redis trouble never fails a turn: when Redis does not answer, the lock logs once and
the turn goes on under the in-process lock alone.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

import structlog

from intentbridge.integration.redis import redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisConversationLock"]

log = structlog.get_logger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisConversationLock:
    """Acquire and release one conversation's lock across processes.

    Args:
        client: a ``redis.asyncio.Redis`` (see ``RedisConnections``).
        lease: seconds after which a lock whose holder vanished frees itself; longer
            than any turn (a turn is bounded by its deadline, a few seconds).
        prefix: key prefix, so several bots can share one Redis.
    """

    def __init__(
        self, client: Redis, *, lease: float = 60.0, prefix: str = "intentbridge:lock"
    ) -> None:
        self.client = client
        self.lease_ms = int(lease * 1000)
        self.prefix = prefix
        self._warned = False

    async def acquire(self, key: str, timeout: float) -> str | None:  # noqa: ASYNC109
        """Wait up to ``timeout`` s for the lock; the holder's token, or None without Redis.

        Raises ``TimeoutError`` when another holder kept it for the whole ``timeout``.
        """
        token = secrets.token_hex(16)
        name = f"{self.prefix}:{key}"
        give_up = time.monotonic() + timeout
        pause = 0.002
        while True:
            try:
                if await self.client.set(name, token, nx=True, px=self.lease_ms):
                    self._warned = False  # Redis is back: warn again on the next outage
                    return token
            except redis_errors() as exc:
                self._warn(exc)
                return None
            left = give_up - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"conversation lock {key!r} held elsewhere")
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    async def release(self, key: str, token: str) -> None:
        """Let go, if the lock is still ours (it may have expired and moved on)."""
        try:
            await self.client.eval(_RELEASE, 1, f"{self.prefix}:{key}", token)
        except redis_errors() as exc:
            self._warn(exc)  # the lease frees it in the end

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "shared_lock_unavailable",
                error=type(exc).__name__,
                detail="conversation locks fall back to this process only",
            )
