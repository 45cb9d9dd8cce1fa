"""Raw asyncio HTTP servers on 127.0.0.1 that misbehave on purpose, for the wire tests,
and what those tests measure.

A handler gets the connection's reader and writer and writes whatever bytes it likes;
the server closes the connection when it returns, and cancels handlers still running
when the test leaves the ``raw_server`` block.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from intentbridge.types import Call, HttpMethod

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def call(path: str, method: HttpMethod = "GET", **fields: Any) -> Call:
    return Call(backend="bank", operation="op", method=method, path=path, **fields)


def response(status: str, body: bytes, *headers: str) -> bytes:
    """An HTTP/1.1 answer with a Content-Length and ``headers`` ("Name: value")."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on a free port; yields the base URL."""
    tasks: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            pass  # the client gave up or the test ended: what these servers are for
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await server.wait_closed()


def after_the_head(handler: Handler) -> Handler:
    """``handler`` called once the request's head (line and headers) has been read."""

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await handler(reader, writer)

    return wrapped


#: What reading one bounded answer (10 MB at most) may hold in memory at its peak.
BOUNDED_READ_PEAK = 60_000_000


async def with_peak_memory(sending: Coroutine[Any, Any, Any]) -> tuple[Any, int]:
    """What ``sending`` returns, and the most memory Python held while it ran."""
    tracemalloc.start()
    try:
        result = await sending
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
