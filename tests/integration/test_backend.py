"""BackendClient sends over real HTTP and classifies every kind of answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from intentbridge.integration.backend import BackendClient
from intentbridge.integration.deadline import deadline_scope
from intentbridge.types import Call, HttpMethod

BEARER = "bearer-s3cret-value"  # what the fake backend (conftest) accepts
API_KEY = "apikey-s3cret-value"


def call(path: str, method: HttpMethod = "GET", **fields: Any) -> Call:
    return Call(backend="bank", operation="op", method=method, path=path, **fields)


@pytest.fixture
async def client(base_url: str, make_backend: Any) -> AsyncIterator[BackendClient]:
    c = BackendClient("bank", make_backend(base_url, timeout=0.3))
    yield c
    await c.aclose()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (201, "ok"),
        (400, "rejected"),
        (401, "auth_failed"),
        (403, "auth_failed"),
        (404, "not_found"),
        (408, "timeout"),
        (409, "rejected"),
        (422, "rejected"),
        (429, "rate_limited"),
        (500, "unavailable"),
        (502, "unavailable"),
        (503, "unavailable"),
        (504, "timeout"),
    ],
)
async def test_status_classes_map_to_outcomes(
    client: BackendClient, status: int, outcome: str
) -> None:
    result = await client.send(call(f"/status/{status}"))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.latency_ms > 0
    assert (result.error is None) == (outcome == "ok")


async def test_rejected_carries_the_backends_reason(client: BackendClient) -> None:
    result = await client.send(call("/status/409"))
    assert result.error == "status 409"
    assert result.body == {"detail": "status 409"}


async def test_non_json_body_is_text(client: BackendClient) -> None:
    result = await client.send(call("/status/200", query=(("text", "plain words"),)))
    assert (result.outcome, result.body) == ("ok", "plain words")


async def test_504_on_a_post_is_outcome_unknown(client: BackendClient) -> None:
    """A gateway timeout means the system behind it may have acted."""
    result = await client.send(call("/status/504", "POST"))
    assert result.outcome == "outcome_unknown"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, "outcome_unknown"),
        (502, "outcome_unknown"),
        (501, "unavailable"),
        (503, "unavailable"),
    ],
)
async def test_a_server_error_on_a_post_may_have_acted(
    client: BackendClient, status: int, outcome: str
) -> None:
    """A transfer answered 500 may have gone through: saying it failed would invite
    the person to send it again. 503 says it was not handled."""
    result = await client.send(call(f"/status/{status}", "POST"))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.error is not None and str(status) in result.error


async def test_connection_refused_is_unavailable(refused_url: str, make_backend: Any) -> None:
    c = BackendClient("bank", make_backend(refused_url))
    try:
        result = await c.send(call("/x", "POST"))
    finally:
        await c.aclose()
    assert result.outcome == "unavailable"
    assert result.status_code is None


async def test_read_timeout_on_post_is_outcome_unknown(
    client: BackendClient, fake: Any, key: str
) -> None:
    result = await client.send(call(f"/slow/{key}", "POST", query=(("delay", "0.6"),)))
    assert result.outcome == "outcome_unknown"
    assert fake.counts[key] == 1  # it did reach the backend


async def test_read_timeout_on_get_is_timeout(client: BackendClient, key: str) -> None:
    result = await client.send(call(f"/slow/{key}", query=(("delay", "0.6"),)))
    assert result.outcome == "timeout"


async def test_money_moving_put_is_unsafe_too(client: BackendClient, key: str) -> None:
    result = await client.send(
        call(f"/slow/{key}", "PUT", query=(("delay", "0.6"),), moves_money=True)
    )
    assert result.outcome == "outcome_unknown"


@pytest.fixture
async def dropping_server() -> AsyncIterator[str]:
    """A TCP server that reads a request and hangs up without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("method", "outcome"), [("POST", "outcome_unknown"), ("GET", "unavailable")]
)
async def test_connection_dropped_after_sending(
    dropping_server: str, make_backend: Any, method: HttpMethod, outcome: str
) -> None:
    c = BackendClient("bank", make_backend(dropping_server))
    try:
        result = await c.send(call("/x", method))
    finally:
        await c.aclose()
    assert result.outcome == outcome


async def test_deadline_clips_the_timeout(base_url: str, make_backend: Any, key: str) -> None:
    c = BackendClient("bank", make_backend(base_url, timeout=5))
    started = time.monotonic()
    try:
        with deadline_scope(0.2):
            result = await c.send(call(f"/slow/{key}", query=(("delay", "0.6"),)))
    finally:
        await c.aclose()
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 0.5


async def test_expired_deadline_sends_nothing(client: BackendClient, fake: Any, key: str) -> None:
    with deadline_scope(-1):
        result = await client.send(call(f"/slow/{key}", "POST"))
    assert result.outcome == "timeout"
    assert fake.counts[key] == 0


async def test_explicit_timeout_argument(client: BackendClient, key: str) -> None:
    result = await client.send(call(f"/slow/{key}", query=(("delay", "0.3"),)), timeout=0.1)
    assert result.outcome == "timeout"


async def test_idempotency_key_header_is_sent(client: BackendClient) -> None:
    result = await client.send(call("/echo/x", "POST", idempotency_key="abc-123"))
    assert result.body["headers"]["idempotency-key"] == "abc-123"


async def test_backend_default_headers_are_sent(base_url: str, make_backend: Any) -> None:
    c = BackendClient("bank", make_backend(base_url, headers={"X-Tenant": "t1"}))
    try:
        result = await c.send(call("/echo/x", headers=(("X-Op", "1"),)))
    finally:
        await c.aclose()
    assert result.body["headers"]["x-tenant"] == "t1"
    assert result.body["headers"]["x-op"] == "1"


async def test_bearer_token_is_sent_and_hidden(base_url: str, make_backend: Any) -> None:
    settings = make_backend(base_url, auth={"type": "bearer", "token": BEARER})
    c = BackendClient("bank", settings)
    try:
        result = await c.send(call("/secure/bearer"))
    finally:
        await c.aclose()
    assert result.outcome == "ok"
    assert BEARER not in repr(c)
    assert BEARER not in repr(c.auth)


async def test_wrong_bearer_token_is_auth_failed(base_url: str, make_backend: Any) -> None:
    c = BackendClient("bank", make_backend(base_url, auth={"type": "bearer", "token": "nope"}))
    try:
        result = await c.send(call("/secure/bearer"))
    finally:
        await c.aclose()
    assert result.outcome == "auth_failed"
    assert "nope" not in (result.error or "")


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "api_key", "key": API_KEY},
        {"type": "api_key", "key": API_KEY, "query_param": "api_key", "header": None},
    ],
)
async def test_api_key_in_header_or_query(
    base_url: str, make_backend: Any, auth: dict[str, Any]
) -> None:
    c = BackendClient("bank", make_backend(base_url, auth=auth))
    try:
        result = await c.send(call("/secure/apikey", query=(("x", "1"),)))
    finally:
        await c.aclose()
    assert result.outcome == "ok"
    assert API_KEY not in repr(c.auth)
    if "query_param" in auth:
        assert result.body["query"] == f"x=1&api_key={API_KEY}"


async def test_ping(client: BackendClient, refused_url: str, make_backend: Any) -> None:
    assert await client.ping()
    down = BackendClient("down", make_backend(refused_url))
    try:
        assert not await down.ping()
    finally:
        await down.aclose()


async def test_one_pooled_client_is_reused(client: BackendClient) -> None:
    first = client.http
    await asyncio.gather(*(client.send(call("/status/200")) for _ in range(10)))
    assert client.http is first


async def test_cookies_from_one_users_call_never_reach_another_users_call() -> None:
    """One pooled client serves every user, so it must not keep cookies."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from intentbridge.project.schema import Backend
    from intentbridge.testing import LoopbackServer

    seen: list[str | None] = []

    async def who(request: Request) -> JSONResponse:
        seen.append(request.headers.get("cookie"))
        response = JSONResponse({"ok": "yes"})
        response.set_cookie("session", "alice-session")
        return response

    async with LoopbackServer(Starlette(routes=[Route("/who", who)])) as url:
        client = BackendClient("api", Backend(base_url=url))
        try:
            for user in ("alice", "bob"):
                call = Call(backend="api", operation="who", method="GET", path="/who", user_id=user)
                assert (await client.send(call)).ok
        finally:
            await client.aclose()
    assert seen == [None, None]
