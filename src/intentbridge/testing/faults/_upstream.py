"""Keep-alive HTTP/1.1 connections from the fault proxy to its one loopback upstream.

Written on h11 rather than with ``httpx.AsyncClient``: on a small 2-core VM httpx's
layers (httpcore, anyio, locks) cost the proxy 1.3-1.8 ms of CPU per request, this
about 0.6 ms in all, and the proxy sits inside benchmarks. It needs no more than a
proxy to one plain-HTTP upstream does: a bounded pool, timeouts, streaming bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Final, TypeVar

import h11

__all__ = ["UpstreamConnection", "UpstreamError", "UpstreamPool"]

_READ_SIZE: Final = 65_536
_T = TypeVar("_T")


class UpstreamError(Exception):
    """The upstream could not be reached, broke the protocol or went silent."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class UpstreamConnection:
    """One connection to the upstream, carrying one request at a time."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._conn = h11.Connection(h11.CLIENT)

    @property
    def usable(self) -> bool:
        """Still open and between requests (the upstream may close idle connections)."""
        return (
            not self._reader.at_eof()
            and not self._writer.is_closing()
            and self._conn.our_state is h11.IDLE
        )

    async def send(self, request: h11.Request, body: bytes) -> None:
        conn = self._conn
        data = conn.send(request) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        self._writer.write(data + (conn.send(h11.EndOfMessage()) or b""))
        await self._within(self._writer.drain(), "sending the request")

    async def response(self) -> h11.Response:
        """The response head (informational 1xx answers are skipped)."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise UpstreamError(f"the upstream sent {event!r} instead of a response")

    async def body(self) -> AsyncIterator[bytes]:
        """The response body as it arrives."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise UpstreamError(f"the upstream sent {event!r} inside a response body")

    async def read_body(self) -> bytes:
        return b"".join([chunk async for chunk in self.body()])

    def finish(self) -> bool:
        """Get ready for the next request; False when the connection cannot be reused."""
        conn = self._conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            return True
        return False

    def close(self, *, abort: bool = False) -> None:
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()

    async def _next_event(self) -> h11.Event:
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamError(f"the upstream broke HTTP/1.1: {exc}") from exc
            if event is h11.NEED_DATA:
                data = await self._within(self._reader.read(_READ_SIZE), "waiting for the answer")
                conn.receive_data(data)
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("the upstream closed the connection without a whole answer")
            elif event is h11.PAUSED:  # pragma: no cover - only after a whole response
                raise UpstreamError("the upstream connection is paused")
            else:
                assert isinstance(event, h11.Event)
                return event

    async def _within(self, step: Awaitable[_T], doing: str) -> _T:
        return await _within(self._timeout, step, doing)


class UpstreamPool:
    """Up to ``max_connections`` connections to ``host:port``; idle ones are reused."""

    def __init__(self, host: str, port: int, *, timeout: float, max_connections: int) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[UpstreamConnection] = []
        self._closed = False

    async def acquire(self) -> UpstreamConnection:
        """A connection for one request; give it back with ``release``."""
        if self._closed:
            raise UpstreamError("the upstream pool is closed")
        await _within(self.timeout, self._slots.acquire(), "waiting for a free connection")
        try:
            while self._idle:
                connection = self._idle.pop()
                if connection.usable:
                    return connection
                connection.close()
            reader, writer = await _within(
                self.timeout,
                asyncio.open_connection(self.host, self.port, limit=_READ_SIZE),
                "connecting",
            )
            return UpstreamConnection(reader, writer, self.timeout)
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: UpstreamConnection, *, reusable: bool) -> None:
        """Give a connection back: kept for the next request when ``reusable`` and whole."""
        self._slots.release()
        if reusable and not self._closed and connection.finish():
            self._idle.append(connection)
        else:
            connection.close(abort=not reusable)

    def close(self) -> None:
        """Close the idle connections; those in use close when released."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()


async def _within(seconds: float, step: Awaitable[_T], doing: str) -> _T:
    try:
        async with asyncio.timeout(seconds):
            return await step
    except TimeoutError as exc:
        raise UpstreamError(
            f"the upstream took more than {seconds} s {doing}", timed_out=True
        ) from exc
    except OSError as exc:
        raise UpstreamError(f"the upstream connection failed {doing}: {exc!r}") from exc
