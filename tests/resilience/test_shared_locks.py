"""Conversation locks shared by worker processes, against the real Redis.

Each ``ConversationLocks`` here stands for one worker; they share nothing but Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from intentbridge.bot import Bot, BotSettings
from intentbridge.conversation.locks import ConversationBusyError, ConversationLocks
from intentbridge.conversation.shared_locks import RedisConversationLock
from intentbridge.integration.redis import RedisConnections
from intentbridge.project import load_project


@pytest.fixture
async def connections() -> AsyncIterator[RedisConnections]:
    conns = RedisConnections()
    yield conns
    await conns.aclose()


def worker(
    connections: RedisConnections, url: str, prefix: str, *, timeout: float = 2.0, lease: float = 60
) -> ConversationLocks:
    shared = RedisConversationLock(connections.get(url), lease=lease, prefix=f"{prefix}:lock")
    return ConversationLocks(timeout=timeout, shared=shared)


async def test_a_second_worker_waits_for_the_first(
    connections: RedisConnections, redis_url: str, redis_prefix: str
) -> None:
    first, second = (worker(connections, redis_url, redis_prefix) for _ in range(2))
    events: list[str] = []
    entered = asyncio.Event()

    async def turn(locks: ConversationLocks, name: str, hold: float) -> None:
        async with locks.hold("rest:alice"):
            entered.set()
            events.append(f"{name} in")
            await asyncio.sleep(hold)
            events.append(f"{name} out")

    one = asyncio.create_task(turn(first, "A", 0.2))
    await entered.wait()
    await turn(second, "B", 0)
    await one
    assert events == ["A in", "A out", "B in", "B out"]


async def test_other_conversations_do_not_wait(
    connections: RedisConnections, redis_url: str, redis_prefix: str
) -> None:
    first, second = (worker(connections, redis_url, redis_prefix) for _ in range(2))
    async with first.hold("rest:alice"):
        started = time.monotonic()
        async with second.hold("rest:bob"):
            pass
        assert time.monotonic() - started < 0.1


async def test_a_worker_gives_up_after_the_timeout(
    connections: RedisConnections, redis_url: str, redis_prefix: str
) -> None:
    first = worker(connections, redis_url, redis_prefix)
    second = worker(connections, redis_url, redis_prefix, timeout=0.2)
    async with first.hold("rest:alice"):
        started = time.monotonic()
        with pytest.raises(ConversationBusyError, match="busy"):
            async with second.hold("rest:alice"):
                pass
        assert 0.15 < time.monotonic() - started < 1.0


async def test_a_vanished_holder_lets_go_when_its_lease_ends(
    connections: RedisConnections, redis_url: str, redis_prefix: str
) -> None:
    crashed = RedisConversationLock(
        connections.get(redis_url), lease=0.3, prefix=f"{redis_prefix}:lock"
    )
    assert await crashed.acquire("rest:alice", 1.0) is not None  # never released
    survivor = worker(connections, redis_url, redis_prefix)
    started = time.monotonic()
    async with survivor.hold("rest:alice"):
        waited = time.monotonic() - started
    assert 0.1 < waited < 1.5


async def test_a_late_release_does_not_free_the_next_holders_lock(
    connections: RedisConnections, redis_url: str, redis_prefix: str
) -> None:
    client = connections.get(redis_url)
    slow = RedisConversationLock(client, lease=0.2, prefix=f"{redis_prefix}:lock")
    token = await slow.acquire("rest:alice", 1.0)
    assert token is not None
    await asyncio.sleep(0.3)  # the slow turn outlived its lease …
    other = RedisConversationLock(client, prefix=f"{redis_prefix}:lock")
    assert await other.acquire("rest:alice", 1.0) is not None  # … and someone took it
    await slow.release("rest:alice", token)  # the slow turn ends: must not free it
    with pytest.raises(TimeoutError):
        await other.acquire("rest:alice", 0.1)


async def test_without_redis_turns_go_on_under_the_local_lock(
    connections: RedisConnections,
) -> None:
    locks = worker(connections, "redis://127.0.0.1:1/0", "nowhere", timeout=1.0)
    started = time.monotonic()
    async with locks.hold("rest:alice"):
        pass
    assert time.monotonic() - started < 1.0


async def test_a_bot_with_redis_limits_shares_its_conversation_locks(
    project_dir: Path, redis_url: str, tmp_path: Path
) -> None:
    env = {"INTENTBRIDGE_LIMITS_URL": redis_url, "COREBANK_URL": "http://127.0.0.1:9"}
    project = load_project(project_dir, env=env)
    bot = await Bot.from_project(project, BotSettings(store_url=f"sqlite:///{tmp_path}/b.db"))
    try:
        assert isinstance(bot.locks.shared, RedisConversationLock)
    finally:
        await bot.aclose()
    local = load_project(project_dir, env={"COREBANK_URL": "http://127.0.0.1:9"})
    bot = await Bot.from_project(local, BotSettings(store_url=f"sqlite:///{tmp_path}/c.db"))
    try:
        assert bot.locks.shared is None
    finally:
        await bot.aclose()
