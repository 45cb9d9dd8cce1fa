"""LoopbackServer: a real uvicorn server on 127.0.0.1, ready on entry, gone on exit."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from intentbridge.testing import LoopbackError, LoopbackServer


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def _loopback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("loopback-")]


def test_sync_context_manager_serves_and_stops() -> None:
    before = len(_loopback_threads())
    server = LoopbackServer(make_app())
    with server as url:
        assert url.startswith("http://127.0.0.1:")
        assert server.url == url
        assert httpx.get(url + "/hello").json() == {"hello": "world"}
    assert len(_loopback_threads()) == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/hello")
    with pytest.raises(LoopbackError):
        _ = server.url


async def test_async_context_manager() -> None:
    async with LoopbackServer(make_app()) as url, httpx.AsyncClient() as client:
        assert (await client.get(url + "/hello")).status_code == 200


def test_lifespan_runs_before_ready() -> None:
    started: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started.append(True)
        yield

    with LoopbackServer(FastAPI(lifespan=lifespan)):
        assert started == [True]


def test_startup_failure_is_reported() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("database missing")
        yield

    server = LoopbackServer(FastAPI(lifespan=lifespan), lifespan="on")
    with pytest.raises(LoopbackError, match="failed to start"), server:
        pass
    assert server.port is None


def test_two_servers_get_different_ports() -> None:
    with LoopbackServer(make_app()) as a, LoopbackServer(make_app()) as b:
        assert a != b
