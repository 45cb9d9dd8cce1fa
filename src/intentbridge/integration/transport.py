"""An httpx transport that sends requests with aiohttp.

httpx stays the client API (auth flows, request building, responses); only the wire
work moves to aiohttp, whose C-accelerated HTTP parser and connection pool cost about
half the CPU of httpcore per call (0.27 against 0.48 ms on the sample bank's balance
lookup, measured with ``bench/turns.py``'s setup). A bot spends most of a turn's CPU
on its backend calls, so this is the largest single saving in a turn.

Why not the ``httpx-aiohttp`` package: it maps every ``aiohttp.ClientConnectionError``
(a server that dropped the connection after reading the request included) to
``httpx.ConnectTimeout``, i.e. "nothing was sent". For a money-moving call that is
the one mistake that must not happen: a dropped answer is ``outcome_unknown`` and
must be settled with the same idempotency key, never reported as "not sent". The
mapping here keeps the two apart:

- failed to connect, or no connection in time  → ``ConnectError`` / ``ConnectTimeout``
  (nothing reached the backend);
- anything after the connection was made (reset, disconnect, bad response, read
  timeout) → ``ReadError`` / ``RemoteProtocolError`` / ``ReadTimeout`` (the request
  may have been acted on).

The transport keeps no cookies (one client serves every user), follows no
redirects (httpx decides that) and reads the whole body, as ``httpx.AsyncClient``
does without ``stream=True``, up to ``MAX_RESPONSE_BYTES`` (``ResponseTooLarge``
past it). ``INTENTBRIDGE_HTTP_TRANSPORT=httpx`` switches back to
httpx's own transport (to compare, or to rule this one out when debugging).
"""

from __future__ import annotations

import os
import ssl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from intentbridge.errors import ConfigError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "BOUNDED_ENCODINGS",
    "MAX_RESPONSE_BYTES",
    "TRANSPORT_ENV",
    "AiohttpTransport",
    "ResponseTooLarge",
    "default_transport",
    "never_connected",
    "read_body",
    "transport_choice",
]

TRANSPORT_ENV = "INTENTBRIDGE_HTTP_TRANSPORT"
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""Longest response body read from a backend (on the wire, and again once decoded)."""
_WIRE = "intentbridge.wire"  # request extension: {"connected": bool}, kept up to date


def never_connected(request: httpx.Request) -> bool:
    """True only when the transport knows ``request`` never got a connection.

    A deadline that cuts a call short (``asyncio.timeout`` around the send) leaves no
    exception from the wire to classify; this tells "still waiting for a pooled
    connection or a connect" (nothing sent) from "may have been sent". Unknown
    (httpx's own transport) counts as "may have been sent".
    """
    wire = request.extensions.get(_WIRE)
    return isinstance(wire, dict) and not wire.get("connected", True)


def default_transport(
    *, verify: ssl.SSLContext | bool, max_connections: int, keepalive_expiry: float = 5.0
) -> httpx.AsyncBaseTransport | None:
    """The transport backend clients use: aiohttp's, or None for httpx's own.

    ``INTENTBRIDGE_HTTP_TRANSPORT`` is ``aiohttp`` (default) or ``httpx``.
    """
    if transport_choice() == "httpx":
        return None
    return AiohttpTransport(
        verify=verify, max_connections=max_connections, keepalive_expiry=keepalive_expiry
    )


def transport_choice() -> str:
    """``$INTENTBRIDGE_HTTP_TRANSPORT``, checked: ``aiohttp`` (default) or ``httpx``."""
    choice = os.environ.get(TRANSPORT_ENV, "aiohttp").strip().lower()
    if choice not in ("aiohttp", "httpx"):
        raise ConfigError(
            f"{TRANSPORT_ENV}={choice!r} is not a transport; use 'aiohttp' or 'httpx'"
        )
    return choice


@contextmanager
def _mapped_errors(request: httpx.Request) -> Iterator[None]:
    import aiohttp

    try:
        yield
    # order matters: the connect-phase classes are subclasses of the general ones
    except aiohttp.ConnectionTimeoutError as exc:  # no connection (or pool slot) in time
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS handshake
        raise httpx.ConnectError(str(exc) or "connect failed", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:  # sent; no (complete) answer in time
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except aiohttp.ClientPayloadError as exc:  # body cut short or badly encoded
        raise httpx.ReadError(str(exc) or "bad response body", request=request) from exc
    except aiohttp.ClientResponseError as exc:  # malformed status line or headers
        raise httpx.RemoteProtocolError(str(exc) or "bad response", request=request) from exc
    except (aiohttp.ClientConnectionError, ConnectionError, OSError) as exc:
        # reset or closed after connecting: the backend may have acted on the request
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.InvalidURL as exc:
        raise httpx.InvalidURL(str(exc)) from exc


class ResponseTooLarge(httpx.ReadError):
    """The backend's answer is longer than ``MAX_RESPONSE_BYTES``; it was not read."""


async def _read_bounded(response: aiohttp.ClientResponse, request: httpx.Request) -> bytes:
    # A body is held in memory whole, so one misbehaving backend (a 100 MB stream, a
    # wrong Content-Length) must not be able to take the worker's memory with it.
    has_body = request.method != "HEAD" and response.status not in (204, 304)
    if has_body and (response.content_length or 0) > MAX_RESPONSE_BYTES:
        raise ResponseTooLarge(_too_large(), request=request)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(_too_large(), request=request)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int = MAX_RESPONSE_BYTES) -> str:
    if limit >= 1024 * 1024:
        return f"the answer is larger than {limit // (1024 * 1024)} MB"
    return f"the answer is larger than {limit // 1024} KB"


#: Content encodings read_body decodes itself, a bounded piece at a time, and their
#: zlib window bits; the first two are what the backend clients ask for.
_INFLATED = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}
#: ``Accept-Encoding`` of the backend clients: only what :func:`read_body` bounds.
BOUNDED_ENCODINGS = ("gzip", "deflate")


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), decoded at most
    ``room`` bytes at a time: a few KB that inflate to gigabytes stop at the bound."""

    def __init__(self, encoding: str) -> None:
        wbits = _INFLATED[encoding]
        self._raw_allowed = wbits == zlib.MAX_WBITS  # deflate: zlib-wrapped, or raw
        self._z = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Up to ``room`` decoded bytes, and whether more would come out of ``data``."""
        try:
            out = self._z.decompress(data, room)
        except zlib.error:
            if not (self._raw_allowed and self._first):
                raise
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
            out = self._z.decompress(data, room)
        self._first = False
        return out, bool(self._z.unconsumed_tail)


async def read_body(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """A streamed response's body, decoded, and closed; :class:`ResponseTooLarge` past
    ``limit`` bytes.

    The aiohttp transport bounds the body on the wire; this bounds it once decoded.
    gzip and deflate are decoded here, never more than the room left: httpx's own
    decoders inflate a whole chunk at once, and 200 KB of gzip took 450 MB there.
    A body in any other encoding — one the clients did not ask for, such as ``br``,
    or several stacked (``gzip, gzip``), which httpx would inflate whole — is refused
    with :class:`httpx.DecodingError`; an empty body is read whatever its header says.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    inflater = _Inflater(encoding) if encoding in _INFLATED else None
    unasked = inflater is None and encoding not in ("", "identity")
    chunks: list[bytes] = []
    size = 0
    try:
        claimed = response.headers.get("content-length", "")
        if claimed.isascii() and claimed.isdigit() and int(claimed) > limit:
            has_body = response.request.method != "HEAD" and response.status_code not in (204, 304)
            if has_body:
                raise ResponseTooLarge(_too_large(limit), request=response.request)
        async for raw in response.aiter_raw():
            if unasked and raw:
                raise httpx.DecodingError(
                    f"the answer is encoded as {encoding[:40]!r}, which was not asked for "
                    f"(only {', '.join(BOUNDED_ENCODINGS)} are read)",
                    request=response.request,
                )
            chunk, more = raw, False
            if inflater is not None:
                try:
                    chunk, more = inflater.decode(raw, limit + 1 - size)
                except zlib.error as exc:
                    raise httpx.DecodingError(
                        f"the {encoding} body cannot be decoded ({exc})", request=response.request
                    ) from None
            size += len(chunk)
            if more or size > limit:
                raise ResponseTooLarge(_too_large(limit), request=response.request)
            chunks.append(chunk)
    finally:
        await response.aclose()
    return b"".join(chunks)


def _client_timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    import aiohttp

    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    connect, read, pool = timeout.get("connect"), timeout.get("read"), timeout.get("pool")
    # aiohttp's ``connect`` covers waiting for a pooled connection *and* connecting
    acquire = None if connect is None and pool is None else (connect or 0.0) + (pool or 0.0)
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


async def _mark_connected(_session: Any, context: Any, _params: Any) -> None:
    wire = context.trace_request_ctx
    if isinstance(wire, dict):
        wire["connected"] = True


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over one aiohttp connection pool (created on first use)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        if verify is True:
            verify = httpx.create_ssl_context()
        self._ssl: ssl.SSLContext | bool = verify
        self._max_connections = max_connections
        self._keepalive = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_connections,
            keepalive_timeout=self._keepalive,
            ssl=self._ssl,
        )
        # From the moment a connection is in hand the request may go out at any step;
        # before it, nothing can have reached the backend.
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(_mark_connected)
        trace.on_connection_reuseconn.append(_mark_connected)
        return aiohttp.ClientSession(
            connector=connector,
            trace_configs=[trace],
            cookie_jar=aiohttp.DummyCookieJar(),  # one client serves every user
            auto_decompress=False,  # httpx decodes, as it would from the wire
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import yarl

        if self._session is None or self._session.closed:
            self._session = self._open()
        session = self._session
        body = await request.aread()
        wire: dict[str, bool] = {"connected": False}
        request.extensions[_WIRE] = wire
        with _mapped_errors(request):
            async with session.request(
                request.method,
                # encoded=True: httpx built and encoded the URL; yarl would otherwise
                # decode "%2E%2E" and resolve it as "..", leaving the segment it was in
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_client_timeout(request),
                compress=None,
                trace_request_ctx=wire,
            ) as response:
                content = await _read_bounded(response, request)
                headers: list[tuple[bytes, bytes]] = list(response.raw_headers)
                status, reason = response.status, response.reason
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
