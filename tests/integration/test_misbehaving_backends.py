"""Backends that answer badly: every answer ends as an honest outcome, in time and memory.

Each backend is a raw asyncio server on 127.0.0.1 that misbehaves on purpose, or a
FastAPI app on a ``LoopbackServer`` for the OAuth2 token endpoint.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import rawhttp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from rawhttp import BOUNDED_READ_PEAK, Handler, after_the_head, call, response, with_peak_memory

from intentbridge.integration import Integrations
from intentbridge.integration.backend import BackendClient, retry_after_of
from intentbridge.integration.records import RecordingHook
from intentbridge.integration.transport import MAX_RESPONSE_BYTES
from intentbridge.project.schema import Backend, BotConfig
from intentbridge.testing import LoopbackServer
from intentbridge.types import HttpMethod


def raw_server(handler: Handler) -> AbstractAsyncContextManager[str]:
    """A raw server whose handlers start after the request's head."""
    return rawhttp.raw_server(after_the_head(handler))


def answer(body: bytes, *headers: str, status: str = "200 OK") -> Handler:
    async def handler(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(status, body, *headers))
        await writer.drain()

    return handler


@asynccontextmanager
async def client_for(handler: Handler, **settings: Any) -> AsyncIterator[BackendClient]:
    async with raw_server(handler) as url:
        client = BackendClient("bank", Backend.model_validate({"base_url": url, **settings}))
        try:
            yield client
        finally:
            await client.aclose()


JSON = "Content-Type: application/json"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_deeply_nested_json_is_an_answer_not_a_crash(method: HttpMethod) -> None:
    """Nesting deeper than Python's stack is kept as text, like any JSON we cannot read."""
    body = b"[" * 100_000 + b"]" * 100_000
    async with client_for(answer(body, JSON)) as client:
        result = await client.send(call("/x", method))
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert isinstance(result.body, str)


async def test_nan_and_infinity_are_not_json() -> None:
    """Python's JSON extensions are invalid JSON: kept as text, never a ``nan`` balance."""
    body = b'{"balance": NaN, "limit": -Infinity}'
    async with client_for(answer(body, JSON)) as client:
        result = await client.send(call("/x"))
    assert (result.outcome, result.body) == ("ok", body.decode())


async def test_lone_surrogates_in_json_strings_become_replacement_characters() -> None:
    """An unpaired ``\\ud800`` would make the reply, log line or stored turn unencodable."""
    body = b'{"name": "a\\ud800b", "list": ["\\udfff"], "pair": "\\ud83d\\ude00"}'
    async with client_for(answer(body, JSON)) as client:
        result = await client.send(call("/x"))
    assert result.body == {"name": "a\ufffdb", "list": ["\ufffd"], "pair": "\U0001f600"}
    assert str(result.body).encode("utf-8")


async def test_a_lone_surrogate_deep_inside_json_is_an_answer_not_a_crash() -> None:
    """Deep enough for json.loads, too deep for replacing the surrogate: kept as text."""
    body = b"[" * 900 + b'"\\ud800"' + b"]" * 900
    async with client_for(answer(body, JSON)) as client:
        result = await client.send(call("/x"))
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert isinstance(result.body, str) and result.body.encode("utf-8")


async def test_retry_after_in_non_ascii_digits_is_ignored() -> None:
    """``Retry-After: ²`` passes ``str.isdigit`` but is no number of seconds."""
    async with client_for(answer(b"{}", JSON, "Retry-After: \xb2", status="429 Slow")) as client:
        result = await client.send(call("/x"))
    assert (result.outcome, result.status_code) == ("rate_limited", 429)
    assert retry_after_of(result) is None


@pytest.mark.parametrize(("method", "outcome"), [("GET", "error"), ("POST", "outcome_unknown")])
async def test_a_huge_streamed_answer_is_not_read_into_memory(
    method: HttpMethod, outcome: str
) -> None:
    """100 MB on the wire: reading stops past the limit, the call ends at once."""

    async def flood(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * (1024 * 1024)
        for _ in range(100):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with client_for(flood, timeout=5) as client:
        result = await asyncio.wait_for(client.send(call("/x", method)), 10)
    assert result.outcome == outcome, result
    assert result.body is None
    assert result.error is not None and "larger than 10 MB" in result.error


async def test_a_huge_claimed_length_is_refused_before_reading() -> None:
    """A ``Content-Length`` past the limit ends the call now, not at the timeout."""

    async def claim(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(5)

    async with client_for(claim, timeout=3) as client:
        started = time.monotonic()
        result = await client.send(call("/x"))
    assert result.outcome == "error", result
    assert time.monotonic() - started < 1.5


async def test_a_head_answer_may_claim_any_length() -> None:
    """A HEAD answer has no body whatever its ``Content-Length`` says: ``/ready`` is true."""

    async def claim(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        await writer.drain()

    async with client_for(claim) as client:
        assert await client.ping(2.0) is True


async def test_a_compression_bomb_is_cut_off_once_decoded() -> None:
    """A few KB of gzip that inflate past the limit are refused like a huge body."""
    bomb = gzip.compress(b"\0" * (MAX_RESPONSE_BYTES + 1024 * 1024), compresslevel=1)
    assert len(bomb) < MAX_RESPONSE_BYTES // 10
    async with client_for(answer(bomb, JSON, "Content-Encoding: gzip")) as client:
        result = await client.send(call("/x"))
    assert result.outcome == "error", result
    assert result.body is None


def _deflate(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", lambda data: gzip.compress(data, compresslevel=9)),
        ("deflate", lambda data: _deflate(data, zlib.MAX_WBITS)),  # zlib-wrapped
        ("deflate", lambda data: _deflate(data, -zlib.MAX_WBITS)),  # raw, as some send it
    ],
)
async def test_a_large_ratio_bomb_never_inflates_in_memory(
    encoding: str, pack: Callable[[bytes], bytes]
) -> None:
    """200 KB that inflate to 200 MB in one piece: decoded a bounded piece at a time."""
    bomb = pack(b" " * 200_000_000)
    async with client_for(answer(bomb, JSON, f"Content-Encoding: {encoding}")) as client:
        result, peak = await with_peak_memory(client.send(call("/x")))
    assert (result.outcome, result.body) == ("error", None)
    assert "larger than 10 MB" in (result.error or "")
    assert peak < BOUNDED_READ_PEAK, f"{peak / 1e6:.0f} MB held to read a bounded answer"


async def test_a_stacked_encoding_bomb_is_refused_without_inflating() -> None:
    """``gzip, gzip``: httpx would inflate each layer a whole chunk at a time."""
    inner = gzip.compress(b" " * 200_000_000, compresslevel=9)
    bomb = gzip.compress(inner, compresslevel=9)
    async with client_for(answer(bomb, JSON, "Content-Encoding: gzip, gzip")) as client:
        result, peak = await with_peak_memory(client.send(call("/x")))
    assert (result.outcome, result.body) == ("error", None)
    assert "'gzip, gzip'" in (result.error or ""), result.error
    assert peak < BOUNDED_READ_PEAK, f"{peak / 1e6:.0f} MB held to refuse an answer"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
async def test_an_encoding_not_asked_for_is_an_error_that_names_it(encoding: str) -> None:
    async with client_for(answer(b"\x1b\x00\x00\x00", JSON, f"Content-Encoding: {encoding}")) as c:
        result = await c.send(call("/x"))
    assert (result.outcome, result.body) == ("error", None)
    assert f"{encoding!r}, which was not asked for" in (result.error or ""), result.error


async def test_a_money_call_answered_unreadably_may_have_gone_through() -> None:
    """The backend answered a POST; that its body cannot be read says nothing of the effect."""
    async with client_for(answer(b"\x1b\x00\x00\x00", JSON, "Content-Encoding: br")) as c:
        result = await c.send(call("/x", "POST", json={"amount": "50"}))
    assert (result.outcome, result.body) == ("outcome_unknown", None)
    assert "sent, but the answer cannot be read" in (result.error or "")


async def test_an_empty_answer_is_read_whatever_its_encoding_header() -> None:
    async with client_for(answer(b"", "Content-Type: text/plain", "Content-Encoding: br")) as c:
        result = await c.send(call("/x"))
    assert result.outcome == "ok", result


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_is_not_what_its_encoding_says_is_an_error(encoding: str) -> None:
    garbage = answer(b"not compressed at all", JSON, f"Content-Encoding: {encoding}")
    async with client_for(garbage) as client:
        result = await client.send(call("/x"))
    assert result.outcome == "error"
    assert result.body is None


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_small_compressed_answers_read_as_before(encoding: str) -> None:
    body = b'{"balance": "12.50"}'
    packed = gzip.compress(body) if encoding == "gzip" else _deflate(body, zlib.MAX_WBITS)
    async with client_for(answer(packed, JSON, f"Content-Encoding: {encoding}")) as client:
        result = await client.send(call("/x"))
    assert (result.outcome, result.body) == ("ok", {"balance": "12.50"})


@pytest.mark.parametrize(("method", "outcome"), [("GET", "timeout"), ("POST", "outcome_unknown")])
async def test_a_trickling_answer_ends_at_the_backends_timeout(
    method: HttpMethod, outcome: str
) -> None:
    """One byte every 0.1 s keeps each read alive; the attempt still ends in time."""

    async def trickle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)

    async with client_for(trickle, timeout=0.5) as client:
        started = time.monotonic()
        result = await asyncio.wait_for(client.send(call("/x", method)), 5)
    assert result.outcome == outcome, result
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("method", "status", "outcome"),
    [("GET", "302 Found", "error"), ("POST", "303 See Other", "outcome_unknown")],
)
async def test_a_redirect_is_never_followed_and_an_unsafe_one_is_unknown(
    method: HttpMethod, status: str, outcome: str
) -> None:
    """The backend had the request: a POST answered with a redirect may have acted."""
    seen: list[bytes] = []

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(b"request")
        await answer(b"", "Location: https://elsewhere.example/x", status=status)(reader, writer)

    async with client_for(redirect) as client:
        result = await client.send(call("/x", method))
    assert (result.outcome, result.status_code) == (outcome, int(status[:3]))
    assert len(seen) == 1


async def test_a_readiness_ping_ends_in_time_when_headers_trickle_in() -> None:
    """``/ready`` must answer even when a backend sends its headers a byte at a time."""

    async def trickle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    async with client_for(trickle) as client:
        started = time.monotonic()
        ready = await asyncio.wait_for(client.ping(0.5), 5)
    assert ready is False
    assert time.monotonic() - started < 1.5


# --- OAuth2 token endpoints that misbehave ------------------------------------------

SECRET = "cl1ent-s3cret-do-not-leak"


def token_app(token_body: Callable[[], Response], hits: list[str]) -> FastAPI:
    app = FastAPI()

    @app.post("/oauth/token")
    async def token() -> Response:
        hits.append("token")
        return token_body()

    @app.get("/api")
    async def api(request: Request) -> Response:
        hits.append("api")
        return JSONResponse({"auth": len(request.headers.get("authorization", ""))})

    return app


@pytest.mark.parametrize(
    "token_body",
    [
        pytest.param(
            lambda: JSONResponse({"access_token": "abc\r\nX-Injected: 1", "expires_in": 60}),
            id="crlf",
        ),
        pytest.param(
            lambda: JSONResponse({"access_token": "a" * 1_000_000, "expires_in": 60}),
            id="one-megabyte",
        ),
        pytest.param(
            lambda: Response(b"[" * 100_000 + b"]" * 100_000, media_type="application/json"),
            id="deeply-nested",
        ),
    ],
)
async def test_an_unusable_token_is_auth_failed_and_never_sent(
    token_body: Callable[[], Response],
) -> None:
    hits: list[str] = []
    async with LoopbackServer(token_app(token_body, hits)) as url:
        settings = Backend.model_validate(
            {
                "base_url": url,
                "timeout": 3,
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": "/oauth/token",
                    "client_id": "bot",
                    "client_secret": SECRET,
                },
            }
        )
        client = BackendClient("bank", settings)
        try:
            result = await client.send(call("/api"))
        finally:
            await client.aclose()
    assert result.outcome == "auth_failed", result
    assert result.error is not None and "token endpoint" in result.error
    assert SECRET not in result.error and "X-Injected" not in result.error
    assert hits == ["token"]


# --- backends that echo our credentials back ----------------------------------------

ECHOED = "echo-s3cret-credential"


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request, pad: int = 0) -> Response:
        sent = request.headers.get("authorization") or request.headers.get("x-api-key")
        detail = f"invalid credentials: {'x' * pad}{sent}"
        return JSONResponse({"detail": detail}, status_code=400)

    return app


@pytest.mark.parametrize(
    "auth",
    [{"type": "bearer", "token": ECHOED}, {"type": "api_key", "key": ECHOED}],
    ids=["bearer", "api_key"],
)
@pytest.mark.parametrize("error_reason", [None, "detail"])
# 265: the secret straddles the point where a long reason is cut; no piece of it is left
@pytest.mark.parametrize("pad", [0, 265])
async def test_credentials_echoed_in_a_refusal_are_redacted(
    auth: dict[str, str], error_reason: str | None, pad: int
) -> None:
    """The reason of a refusal reaches the reply, logs and audit: never our secret."""
    records = RecordingHook()
    async with LoopbackServer(echo_app()) as url:
        config = BotConfig.model_validate(
            {
                "backends": {"bank": {"base_url": url, "auth": auth}},
                "operations": {
                    "op": {
                        "backend": "bank",
                        "path": "/echo",
                        "query": {"pad": str(pad)},
                        "error_reason": error_reason,
                    }
                },
            }
        )
        async with Integrations.from_config(config, hooks=[records]) as integrations:
            result = await integrations.execute("op", {}, conversation_id="c", user_id="u")
    assert result.outcome == "rejected"
    assert result.error is not None and "invalid credentials" in result.error
    assert ECHOED not in result.error and ECHOED[:6] not in result.error
    assert records[-1].error is not None and ECHOED[:6] not in records[-1].error
