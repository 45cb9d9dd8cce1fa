"""OAuth2 client credentials against a real token endpoint on loopback."""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from rawhttp import BOUNDED_READ_PEAK, with_peak_memory

from intentbridge.integration.auth import OAuth2ClientCredentialsAuth, TokenError
from intentbridge.integration.backend import BackendClient
from intentbridge.project.schema import Backend
from intentbridge.testing import LoopbackServer
from intentbridge.types import Call

CLIENT_ID = "bot-client"
SECRET = "cl1ent-s3cret-do-not-leak"


@dataclass
class TokenState:
    fetches: int = 0
    api_hits: int = 0
    expires_in: float = 3600
    down: bool = False
    reject_all: bool = False
    bomb: bool = False  # answer tokens with 50 MB of JSON whitespace, gzipped to ~50 KB
    valid: set[str] = field(default_factory=set)
    methods: list[str] = field(default_factory=list)


def token_app(state: TokenState) -> FastAPI:
    app = FastAPI()

    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        state.fetches += 1
        await asyncio.sleep(0.05)  # long enough for concurrent callers to pile up
        if state.down:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
        if state.bomb:
            return Response(
                _gzip_bomb(), media_type="application/json", headers={"content-encoding": "gzip"}
            )
        form = dict(parse_qsl((await request.body()).decode()))  # no python-multipart here
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            given = base64.b64decode(header[6:]).decode().split(":", 1)
            state.methods.append("client_secret_basic")
        else:
            given = [str(form.get("client_id")), str(form.get("client_secret"))]
            state.methods.append("client_secret_post")
        if given != [CLIENT_ID, SECRET] or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = f"tok-{state.fetches}"
        state.valid.add(value)
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": state.expires_in}
        )

    @app.get("/api/bomb")
    async def bomb(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in state.valid:
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return Response(
            _api_bomb(), media_type="application/json", headers={"content-encoding": "gzip"}
        )

    @app.get("/api/data")
    async def data(request: Request) -> Response:
        state.api_hits += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if state.reject_all or token not in state.valid:
            return JSONResponse({"detail": "invalid token"}, status_code=401)
        return JSONResponse({"token": token})

    return app


_STATE = TokenState()


@functools.cache
def _api_bomb() -> bytes:
    return gzip.compress(b" " * 200_000_000, compresslevel=9)  # ~200 KB on the wire


@functools.cache
def _gzip_bomb() -> bytes:
    # valid JSON once inflated: whitespace, then a token
    return gzip.compress(b" " * 50_000_000 + b'{"access_token": "t"}', compresslevel=9)


@pytest.fixture(scope="module")
def oauth_url() -> Iterator[str]:
    with LoopbackServer(token_app(_STATE)) as url:
        yield url


@pytest.fixture
def state() -> TokenState:
    _STATE.__init__()  # type: ignore[misc]  # a fresh state, same object the app holds
    return _STATE


def settings(url: str, **auth: Any) -> Backend:
    return Backend.model_validate(
        {
            "base_url": url,
            "timeout": 2,
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": "/oauth/token",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                **auth,
            },
        }
    )


@pytest.fixture
async def client(oauth_url: str, state: TokenState) -> AsyncIterator[BackendClient]:
    c = BackendClient("bank", settings(oauth_url))
    yield c
    await c.aclose()


GET_DATA = Call(backend="bank", operation="data", method="GET", path="/api/data")


async def test_twenty_concurrent_calls_fetch_one_token(
    client: BackendClient, state: TokenState
) -> None:
    results = await asyncio.gather(*(client.send(GET_DATA) for _ in range(20)))
    assert [r.outcome for r in results] == ["ok"] * 20
    assert state.fetches == 1
    assert {r.body["token"] for r in results} == {"tok-1"}


async def test_token_is_cached_between_calls(client: BackendClient, state: TokenState) -> None:
    for _ in range(3):
        assert (await client.send(GET_DATA)).ok
    assert state.fetches == 1


async def test_token_is_refreshed_before_expiry(oauth_url: str, state: TokenState) -> None:
    state.expires_in = 0.4  # refreshed at half its life, as the margin is longer
    c = BackendClient("bank", settings(oauth_url, refresh_margin=30))
    try:
        assert (await c.send(GET_DATA)).body == {"token": "tok-1"}
        await asyncio.sleep(0.25)
        assert (await c.send(GET_DATA)).body == {"token": "tok-2"}
    finally:
        await c.aclose()
    assert state.fetches == 2


async def test_401_refreshes_once_and_retries_once(
    client: BackendClient, state: TokenState
) -> None:
    assert (await client.send(GET_DATA)).ok
    state.valid.clear()  # the backend revoked the token early
    result = await client.send(GET_DATA)
    assert result.outcome == "ok"
    assert result.body == {"token": "tok-2"}
    assert state.fetches == 2
    assert state.api_hits == 3


async def test_persistent_401_gives_up_after_one_retry(
    client: BackendClient, state: TokenState
) -> None:
    state.reject_all = True
    result = await client.send(GET_DATA)
    assert result.outcome == "auth_failed"
    assert state.fetches == 2
    assert state.api_hits == 2


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_auth_methods(oauth_url: str, state: TokenState, method: str) -> None:
    c = BackendClient("bank", settings(oauth_url, auth_method=method))
    try:
        assert (await c.send(GET_DATA)).ok
    finally:
        await c.aclose()
    assert state.methods == [method]


async def test_token_endpoint_down_is_unavailable_once_for_many(
    client: BackendClient, state: TokenState
) -> None:
    """A 503 from the token endpoint means the backend is down, not our credentials wrong."""
    state.down = True
    results = await asyncio.gather(*(client.send(GET_DATA) for _ in range(10)))
    assert {r.outcome for r in results} == {"unavailable"}
    assert state.fetches == 1  # waiters share the failed fetch's answer
    assert state.api_hits == 0
    assert "503" in (results[0].error or "")
    state.down = False
    assert (await client.send(GET_DATA)).ok  # recovers on the next call


async def test_a_token_answer_that_inflates_past_64_kb_is_refused_unread(
    client: BackendClient, state: TokenState
) -> None:
    """50 MB of gzip-inflated JSON is not held in memory to find a token in it."""
    state.bomb = True
    result = await client.send(GET_DATA)
    assert result.outcome == "auth_failed"
    assert "larger than 64 KB" in (result.error or "")
    assert state.api_hits == 0


async def test_an_oauth_backends_answer_is_bounded_once_decoded(client: BackendClient) -> None:
    """An auth flow that sees responses makes httpx read each one whole: 200 MB here,
    from 200 KB of gzip, before the backend's 10 MB bound could apply."""
    await client.send(GET_DATA)  # a token first: its fetch is not what is measured
    _api_bomb()  # made once, by the server in this process, before measuring
    bomb = Call(backend="bank", operation="b", method="GET", path="/api/bomb")
    result, peak = await with_peak_memory(client.send(bomb))
    assert result.outcome == "error"
    assert "larger than 10 MB" in (result.error or "")
    assert peak < BOUNDED_READ_PEAK, f"{peak / 1e6:.0f} MB held to read a bounded answer"


async def test_token_endpoint_unreachable(refused_url: str, oauth_url: str) -> None:
    c = BackendClient("bank", settings(oauth_url, token_url=refused_url + "/token"))
    try:
        result = await c.send(GET_DATA)
    finally:
        await c.aclose()
    assert result.outcome == "unavailable"
    assert "could not reach token endpoint" in (result.error or "")


async def test_secret_never_shows(oauth_url: str, state: TokenState) -> None:
    c = BackendClient("bank", settings(oauth_url, client_secret="wrong-" + SECRET))
    try:
        result = await c.send(GET_DATA)
        auth = c.auth
    finally:
        await c.aclose()
    assert result.outcome == "auth_failed"
    assert "invalid_client" in (result.error or "")
    texts = [result.error, repr(result), repr(c), repr(auth), str(auth)]
    assert not any(SECRET in (t or "") for t in texts)


async def test_token_never_shows(client: BackendClient, state: TokenState) -> None:
    result = await client.send(GET_DATA)
    auth = client.auth
    assert isinstance(auth, OAuth2ClientCredentialsAuth)
    assert "tok-1" not in repr(auth)
    assert SECRET not in repr(auth)
    assert "tok-1" not in repr(auth._token)
    assert result.ok


def test_token_error_carries_context_not_secrets() -> None:
    error = TokenError("token endpoint x answered HTTP 500", token_url="x", status_code=500)
    assert (error.token_url, error.status_code) == ("x", 500)
