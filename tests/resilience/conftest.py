"""Real loopback backends and a real Redis for the resilience tests.

Redis comes from ``INTENTBRIDGE_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``).
Without one, Redis tests skip, except under ``CI=true`` where they fail: CI must run
them. Each test gets its own key prefix and its keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from intentbridge.project.schema import BotConfig
from intentbridge.testing import LoopbackServer, fast_retries

REDIS_URL = os.environ.get("INTENTBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")


class FakeBackend:
    """Counts every hit per key; each key answers as ``mode[key]`` says (default ok)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.mode: dict[str, str] = {}
        self.app = FastAPI()

        @self.app.api_route("/hit/{key}", methods=["GET", "POST"])
        async def hit(key: str) -> Response:
            self.hits[key] += 1
            mode = self.mode.get(key, "ok")
            if mode == "fail":
                return JSONResponse({"detail": "down"}, status_code=503)
            if mode == "reject":
                return JSONResponse({"detail": "not like this"}, status_code=422)
            if mode == "auth":
                return JSONResponse({"detail": "who are you"}, status_code=401)
            return JSONResponse({"hit": self.hits[key]})

        @self.app.get("/slow/{key}")
        async def slow(key: str, delay: float = 3.0) -> Any:
            self.hits[key] += 1
            await asyncio.sleep(delay)
            return {"slow": True}


@pytest.fixture(scope="session")
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="session")
def base_url(fake: FakeBackend) -> Iterator[str]:
    with LoopbackServer(fake.app, graceful_timeout=1) as url:
        yield url


@pytest.fixture
def key() -> str:
    """A fresh name so a test's hit counter is its own."""
    return uuid.uuid4().hex


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[list[float]]:
    with fast_retries() as sleeps:
        yield sleeps


@pytest.fixture(autouse=True)
def _limits_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide about INTENTBRIDGE_RATE_LIMITS themselves, whatever the shell says."""
    monkeypatch.delenv("INTENTBRIDGE_RATE_LIMITS", raising=False)


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The test Redis URL; skips (fails under CI=true) when nothing answers there."""
    if not _redis_answers(REDIS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI=true")
        pytest.skip(f"no Redis at {REDIS_URL} (set INTENTBRIDGE_TEST_REDIS)")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"intentbridge-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback port where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"127.0.0.1:{port}"


def _make_bot(
    url: str,
    *,
    backend: dict[str, Any] | None = None,
    operations: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    extra_backends: dict[str, Any] | None = None,
) -> BotConfig:
    """A bot with backend ``bank`` at ``url`` and, by default, one GET ``probe``."""
    ops = operations or {"probe": {}}
    data: dict[str, Any] = {
        "backends": {"bank": {"base_url": url, **(backend or {})}, **(extra_backends or {})},
        "operations": {
            name: {
                "backend": "bank",
                "path": "/hit/{key}",
                "parameters": {"key": {}},
                **op,
            }
            for name, op in ops.items()
        },
    }
    if limits is not None:
        data["limits"] = limits
    return BotConfig.model_validate(data)


@pytest.fixture
def make_bot() -> Callable[..., BotConfig]:
    """``make_bot(url, backend=..., operations=..., limits=...)`` (see ``_make_bot``)."""
    return _make_bot
