"""One turn at a time per conversation, with a bound on how long to wait.

Two messages from the same sender must not interleave (a "yes" racing a "no"); turns
of different senders never wait for each other. With a shared lock (Redis, see
:mod:`intentbridge.conversation.shared_locks`) this holds across worker processes too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from intentbridge.errors import IntentbridgeError


class ConversationBusyError(IntentbridgeError):
    """Another turn of the same conversation held the lock for too long."""


class SharedLock(Protocol):
    """A lock other processes see too (``RedisConversationLock``)."""

    async def acquire(self, key: str, timeout: float) -> str | None:  # noqa: ASYNC109
        """Token of the holder; None when the shared store is unavailable."""

    async def release(self, key: str, token: str) -> None: ...


class ConversationLocks:
    """In-process locks keyed by conversation id, dropped when nobody holds them.

    ``shared``: also take a cross-process lock, after the local one (so waiters in one
    process queue locally instead of polling the shared store). Both waits together
    stay within ``timeout``.
    """

    def __init__(self, timeout: float = 10.0, *, shared: SharedLock | None = None) -> None:
        self.timeout = timeout
        self.shared = shared
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        started = time.monotonic()
        try:
            try:
                if lock.locked():
                    async with asyncio.timeout(self.timeout):
                        await lock.acquire()
                else:  # the usual case: no timer, no task, no suspension
                    await lock.acquire()
            except TimeoutError as exc:
                raise self._busy(key) from exc
            try:
                token = None
                if self.shared is not None:
                    left = self.timeout - (time.monotonic() - started)
                    try:
                        token = await self.shared.acquire(key, max(left, 0.0))
                    except TimeoutError as exc:
                        raise self._busy(key) from exc
                try:
                    yield
                finally:
                    if token is not None and self.shared is not None:
                        await self.shared.release(key, token)
            finally:
                lock.release()
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                # keep the dict small: a lock nobody waits for can be dropped
                del self._users[key]
                del self._locks[key]

    def _busy(self, key: str) -> ConversationBusyError:
        return ConversationBusyError(
            f"conversation {key!r} is busy: another turn held it for over {self.timeout:g}s"
        )
