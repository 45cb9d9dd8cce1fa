"""One turn at a time per conversation, with a bound on how long to wait.

Two messages from the same sender must not interleave (a "yes" racing a "no"); turns
of different senders never wait for each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from intentbridge.errors import IntentbridgeError


class ConversationBusyError(IntentbridgeError):
    """Another turn of the same conversation held the lock for too long."""


class ConversationLocks:
    """In-process locks keyed by conversation id, dropped when nobody holds them."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            try:
                if lock.locked():
                    async with asyncio.timeout(self.timeout):
                        await lock.acquire()
                else:  # the usual case: no timer, no task, no suspension
                    await lock.acquire()
            except TimeoutError as exc:
                raise ConversationBusyError(
                    f"conversation {key!r} is busy: another turn held it for over {self.timeout:g}s"
                ) from exc
            try:
                yield
            finally:
                lock.release()
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                # keep the dict small: a lock nobody waits for can be dropped
                del self._users[key]
                del self._locks[key]
