"""The aiohttp wire under httpx: "never sent" and "sent, answer lost" stay apart.

Each backend here is a raw asyncio server on 127.0.0.1 that misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest
from rawhttp import call, raw_server, response

from intentbridge.errors import ConfigError
from intentbridge.integration import Integrations
from intentbridge.integration.backend import BackendClient
from intentbridge.integration.transport import (
    TRANSPORT_ENV,
    AiohttpTransport,
    default_transport,
)
from intentbridge.types import HttpMethod


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


@pytest.mark.parametrize(
    ("method", "outcome"), [("POST", "outcome_unknown"), ("GET", "unavailable")]
)
@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc\r\nthis is not http\r\n\r\n",
        # HTTP forbids a body on 204; aiohttp's parser reads it as a next answer
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
    ],
)
async def test_a_malformed_answer_after_sending(
    make_backend: Any, method: HttpMethod, outcome: str, answer: bytes
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with raw_server(garbage) as url:
        client = BackendClient("bank", make_backend(url))
        try:
            result = await client.send(call("/x", method, json={"a": 1}))
        finally:
            await client.aclose()
    assert result.outcome == outcome
    assert result.error is not None and "not valid HTTP" in result.error


async def test_no_pooled_connection_in_time_is_a_timeout_and_sends_nothing(
    make_backend: Any,
) -> None:
    """With the only connection busy, the second call never leaves: it is not unknown."""
    seen: list[bytes] = []
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                seen.append(await read_request(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            arrived.set()
            await release.wait()
            writer.write(response("200 OK", b"{}", "Content-Type: application/json"))
            await writer.drain()

    async with raw_server(slow) as url:
        client = BackendClient("bank", make_backend(url, max_connections=1))
        try:
            first = asyncio.create_task(client.send(call("/first", "POST"), timeout=2.0))
            await asyncio.wait_for(arrived.wait(), 2.0)
            second = await client.send(call("/second", "POST"), timeout=0.2)
            release.set()
            assert (await first).outcome == "ok"
        finally:
            await client.aclose()
    assert second.outcome == "timeout", second
    assert len(seen) == 1 and b"/first" in seen[0]


async def test_compressed_json_is_decoded(make_backend: Any) -> None:
    body = gzip.compress(json.dumps({"balance": "12.50"}).encode())

    async def zipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        headers = ("Content-Type: application/json", "Content-Encoding: gzip")
        writer.write(response("200 OK", body, *headers))
        await writer.drain()
        writer.close()

    async with raw_server(zipped) as url:
        client = BackendClient("bank", make_backend(url))
        try:
            result = await client.send(call("/x"))
        finally:
            await client.aclose()
    assert (result.outcome, result.body) == ("ok", {"balance": "12.50"})


async def test_request_body_and_headers_arrive_as_built(make_backend: Any) -> None:
    seen: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response("201 Created", b'{"id": "t1"}', "Content-Type: application/json"))
        await writer.drain()
        writer.close()

    async with raw_server(echo) as url:
        client = BackendClient("bank", make_backend(url))
        try:
            result = await client.send(
                call("/transfers", "POST", json={"amount": "5.00"}, idempotency_key="k-1")
            )
        finally:
            await client.aclose()
    assert result.outcome == "ok" and result.status_code == 201
    request = seen[0].decode()
    assert request.startswith("POST /transfers HTTP/1.1\r\n")
    assert "idempotency-key: k-1" in request.lower()
    assert request.endswith('{"amount":"5.00"}')


def test_transport_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    assert isinstance(default_transport(verify=False, max_connections=5), AiohttpTransport)
    monkeypatch.setenv(TRANSPORT_ENV, "httpx")
    assert default_transport(verify=False, max_connections=5) is None
    monkeypatch.setenv(TRANSPORT_ENV, "curl")
    with pytest.raises(ConfigError, match="INTENTBRIDGE_HTTP_TRANSPORT"):
        default_transport(verify=False, max_connections=5)


def test_a_wrong_transport_is_refused_when_the_bot_is_built(
    monkeypatch: pytest.MonkeyPatch, make_bot: Any, refused_url: str
) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, "curl")
    with pytest.raises(ConfigError, match="use 'aiohttp' or 'httpx'"):
        Integrations.from_config(make_bot(refused_url, {}))
