"""One client connection to the fault proxy: read requests, roll faults, answer or forward."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from random import Random
from typing import Final
from urllib.parse import urlsplit

import h11

from intentbridge.testing.faults._upstream import UpstreamConnection, UpstreamError, UpstreamPool
from intentbridge.testing.faults.settings import FaultKind, Faults
from intentbridge.testing.faults.stats import FaultRecord, FaultStats

__all__ = ["READ_SIZE", "ClientConnection", "Route"]

_log = logging.getLogger("intentbridge.testing.faults")

READ_SIZE: Final = 65_536
# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded. Content-Length
# is recomputed by whoever frames the body next.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Expect: the proxy answers "100 Continue" itself and sends the upstream whole bodies.
_REQUEST_DROP: Final = _HOP_BY_HOP | {b"host", b"content-length", b"expect"}
_NO_BODY_STATUS: Final = frozenset({204, 304})
# Methods whose requests always say how long their body is, even when it is empty.
_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
_MARK: Final = b"x-intentbridge-fault"
_GARBAGE: Final = b"\x00<!-- garbled by intentbridge FaultProxy -->"
_LINGER_RST: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class Route:
    """Where and how a proxy forwards: what each client connection needs from it."""

    pool: Callable[[], UpstreamPool | None]
    """The upstream pool, or None once the proxy is stopping."""
    state: Callable[[], tuple[Faults, Random]]
    """The faults in force and their random stream, read together per request."""
    stats: FaultStats
    host_header: bytes
    base_path: str
    timeout: float
    max_body_size: int


class _Closed(Exception):
    """The connection must end now: aborted, or closed nicely after what was written."""

    def __init__(self, *, abort: bool) -> None:
        super().__init__()
        self.abort = abort


class ClientConnection:
    """Serves one client connection until it closes, fails or is cancelled."""

    def __init__(
        self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._route = route
        self._stats = route.stats
        self._reader = reader
        self._writer = writer
        self._conn = h11.Connection(h11.SERVER)

    async def serve(self) -> None:
        conn, writer = self._conn, self._writer
        abort = True
        try:
            while True:
                request = await self._read_request()
                if request is None:
                    abort = False
                    return
                await self._exchange(*request)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    abort = False  # the client asked to close, or we must; close nicely
                    return
                conn.start_next_cycle()
        except _Closed as closed:
            abort = closed.abort
        except (ConnectionError, TimeoutError):
            pass
        except h11.RemoteProtocolError as exc:
            abort = False
            self._answer_quietly(exc.error_status_hint, f"bad request: {exc}")
        except Exception:
            _log.exception("FaultProxy: unexpected error on a client connection")
        finally:
            if abort:
                writer.transport.abort()
            else:
                writer.close()

    async def _read_request(self) -> tuple[h11.Request, bytes] | None:
        """The next request and its whole body, or None when the client is done."""
        conn, reader = self._conn, self._reader
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    self._writer.write(
                        _bytes(conn, h11.InformationalResponse(status_code=100, headers=[]))
                    )
                if request is None and not conn.trailing_data[0]:
                    # Idle keep-alive connections wait without a deadline: closing them
                    # would race a client reusing one and fail a request nobody faulted.
                    data = await reader.read(READ_SIZE)
                else:
                    async with asyncio.timeout(self._route.timeout):
                        data = await reader.read(READ_SIZE)
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._route.max_body_size:
                    self._answer_quietly(413, "request body too large")
                    raise _Closed(abort=False)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None  # h11 sends Request before EndOfMessage
                return request, bytes(body)
            else:  # ConnectionClosed (PAUSED cannot come before our response)
                return None

    async def _exchange(self, request: h11.Request, body: bytes) -> None:
        method = request.method.decode("ascii")
        target = request.target.decode("ascii")  # h11 admits only ASCII targets
        if not target.startswith("/"):
            # Absolute form ("http://host/path"): a client configured to use us as its
            # HTTP proxy. Only the path and query go to the upstream.
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        path = target.partition("?")[0]
        stats = self._stats
        stats.requests += 1
        if method == "CONNECT":
            self._answer(501, "FaultProxy does not tunnel (CONNECT)")
            return
        faults, rng = self._route.state()
        delay, fault = faults.roll(rng, method, path)
        stats.log.append(FaultRecord(method, path, fault))
        if delay > 0:
            stats.delayed += 1
            await asyncio.sleep(delay)
        if fault == "reset":
            stats.resets += 1
            self._reset()
            raise _Closed(abort=True)
        if fault == "error_5xx":
            stats.error_5xx += 1
            self._answer(faults.error_status, "injected fault", fault=fault)
            return
        if fault == "rate_limit":
            stats.rate_limited += 1
            seconds = faults.retry_after
            value = str(int(seconds)) if seconds.is_integer() else repr(seconds)
            extra = [(b"retry-after", value.encode("ascii"))]
            self._answer(429, "injected fault", fault=fault, extra=extra)
            return
        await self._forward(request, target, body, fault)

    async def _forward(
        self, request: h11.Request, target: str, body: bytes, fault: FaultKind | None
    ) -> None:
        route = self._route
        pool = route.pool()
        if pool is None:  # stopping
            raise _Closed(abort=True)
        tokens = _connection_tokens(request.headers)
        dropped = _REQUEST_DROP | tokens if tokens else _REQUEST_DROP
        headers = [(b"host", route.host_header)]
        headers += [(name, value) for name, value in request.headers if name not in dropped]
        if body or request.method in _BODY_METHODS:
            headers.append((b"content-length", b"%d" % len(body)))
        outgoing = h11.Request(
            method=request.method, target=route.base_path + target, headers=headers
        )
        self._stats.forwarded += 1
        upstream: UpstreamConnection | None = None
        reusable = False
        try:
            try:
                upstream = await pool.acquire()
                await upstream.send(outgoing, body)
                response = await upstream.response()
            except UpstreamError as exc:
                self._stats.upstream_errors += 1
                self._answer(504 if exc.timed_out else 502, f"upstream failed: {exc}")
                return
            if fault == "lose_response":
                await upstream.read_body()
                reusable = True
                self._stats.lost_responses += 1
                raise _Closed(abort=False)  # closed cleanly, not a byte sent: the answer is lost
            has_body = request.method != b"HEAD" and response.status_code not in _NO_BODY_STATUS
            if fault == "malformed" and has_body:
                await self._send_malformed(response, upstream)
            else:
                await self._stream_back(response, upstream)
            reusable = True
        except UpstreamError as exc:
            # The backend broke off mid-answer; the client cannot get a whole one either.
            self._stats.upstream_errors += 1
            raise _Closed(abort=True) from exc
        finally:
            # Also on cancellation (the proxy stopping): the slot and socket go back.
            if upstream is not None:
                pool.release(upstream, reusable=reusable)

    async def _stream_back(self, response: h11.Response, upstream: UpstreamConnection) -> None:
        conn, writer = self._conn, self._writer
        head = h11.Response(
            status_code=response.status_code,
            headers=_response_headers(response.headers),
            reason=response.reason,
        )
        # The head goes out with the first chunk: a small answer is one write.
        pending = _bytes(conn, head)
        async for chunk in upstream.body():
            writer.write(pending + _bytes(conn, h11.Data(data=chunk)))
            pending = b""
            await writer.drain()
        writer.write(pending + _bytes(conn, h11.EndOfMessage()))

    async def _send_malformed(self, response: h11.Response, upstream: UpstreamConnection) -> None:
        content = await upstream.read_body()
        garbled = content[: len(content) // 2] + _GARBAGE
        # Content-Encoding goes too: the garbage is plain bytes, not gzip that fails to
        # inflate (a different error than the one this fault is about).
        skip = {b"content-length", b"content-encoding"}
        headers = [(k, v) for k, v in _response_headers(response.headers) if k not in skip]
        headers += [(b"content-length", b"%d" % len(garbled)), (_MARK, b"malformed")]
        head = h11.Response(status_code=response.status_code, headers=headers)
        self._writer.write(_bytes(self._conn, head, h11.Data(data=garbled), h11.EndOfMessage()))
        self._stats.malformed += 1

    def _answer(
        self,
        status: int,
        detail: str,
        *,
        fault: FaultKind | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Send the proxy's own small JSON answer (an injected fault, or about the upstream)."""
        body = json.dumps({"detail": detail, "fault": fault}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if fault is not None:
            headers.append((_MARK, fault.encode("ascii")))
        headers += extra or []
        head = h11.Response(status_code=status, headers=headers)
        self._writer.write(_bytes(self._conn, head, h11.Data(data=body), h11.EndOfMessage()))

    def _answer_quietly(self, status: int, detail: str) -> None:
        # Best effort on a connection that is ending anyway: h11 refuses when a
        # response has already begun, and then there is nothing better to say.
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                self._answer(status, detail)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST instead of FIN: the client sees "connection
        # reset", as when a load balancer or a crashed backend drops it.
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        self._writer.transport.abort()


def _bytes(conn: h11.Connection, *events: h11.Event) -> bytes:
    # h11 returns None only for ConnectionClosed, which is never sent here.
    return b"".join(conn.send(event) or b"" for event in events)


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Header names the ``Connection`` header marks as hop-by-hop too."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    tokens.discard(b"close")
    tokens.discard(b"keep-alive")
    return tokens


def _response_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # h11 hands header names over lower-cased.
    tokens = _connection_tokens(headers)
    dropped = _HOP_BY_HOP | tokens if tokens else _HOP_BY_HOP
    return [(k, v) for k, v in headers if k not in dropped]
