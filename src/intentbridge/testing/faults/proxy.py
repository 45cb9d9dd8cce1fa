"""``FaultProxy``: an HTTP/1.1 proxy on 127.0.0.1 that injects ``Faults`` on the way."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import threading
from collections.abc import Iterator
from random import Random
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from intentbridge.testing.faults._client import READ_SIZE, ClientConnection, Route
from intentbridge.testing.faults._upstream import UpstreamPool
from intentbridge.testing.faults.settings import Faults
from intentbridge.testing.faults.stats import FaultStats

__all__ = ["FaultProxy"]


def _require_loopback(host: str, what: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"FaultProxy {what} must be on this machine (127.0.0.1, ::1 or localhost), "
            f"got {host!r}: it is a test tool and must not send traffic elsewhere"
        )


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 between your bot and its backend, injecting faults.

    Point the bot's backend ``base_url`` at ``proxy.url``. Requests are forwarded to
    ``upstream`` (plain HTTP, loopback only) over a pool of keep-alive connections;
    responses stream back. ``faults`` say what goes wrong (see :class:`Faults`) and may
    be replaced at any time, e.g. to make the backend fail and then recover; each new
    ``Faults`` restarts its seeded random stream. ``stats`` counts what happened.

    ``timeout`` bounds every step of an upstream call (connect, write, each read; the
    client gets 504 when it runs out, 502 when the backend is unreachable) and the time
    a client may take to send the rest of a request it has started.

    In async code::

        async with FaultProxy(backend_url, Faults(lose_response=0.1, seed=1)) as proxy:
            ...  # the bot talks to proxy.url
            proxy.faults = Faults()  # the backend recovers
        assert proxy.stats.lost_responses == 3

    From synchronous code (a benchmark, a sync fixture) it runs in its own thread::

        with FaultProxy(backend_url, Faults(error_5xx=0.05)).run_in_thread() as proxy:
            run_benchmark(base_url=proxy.url)
    """

    def __init__(
        self,
        upstream: str,
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
        max_body_size: int = 16 * 1024 * 1024,
        max_connections: int = 100,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"FaultProxy upstream must be a plain http:// URL, got {upstream!r} "
                "(it only reaches backends on this machine, where TLS adds nothing)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"FaultProxy upstream is a bare base URL, got {upstream!r}")
        _require_loopback(parts.hostname, "upstream")
        _require_loopback(host, "host")
        self.upstream = upstream.rstrip("/")
        # "localhost" may bind ::1 and 127.0.0.1 on two different free ports; one it is.
        self.host = "127.0.0.1" if host == "localhost" else host
        self.timeout = timeout
        self.max_body_size = max_body_size
        self.max_connections = max_connections
        self.stats = FaultStats()
        # Each request target ("/path?query") is appended to the base path, so an
        # upstream like "http://127.0.0.1:8001/api" keeps its "/api".
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._wanted_port = port
        self._port: int | None = None
        initial = faults if faults is not None else Faults()
        self._state: tuple[Faults, Random] = (initial, initial.new_random())
        self._server: asyncio.Server | None = None
        self._pool: UpstreamPool | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._route = Route(
            pool=lambda: self._pool,
            state=lambda: self._state,
            stats=self.stats,
            host_header=parts.netloc.encode("ascii"),
            base_path=parts.path.rstrip("/"),
            timeout=timeout,
            max_body_size=max_body_size,
        )

    # -- settings ------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in force; assigning new ones restarts their seeded random stream."""
        return self._state[0]

    @faults.setter
    def faults(self, faults: Faults) -> None:
        # One tuple, swapped in one assignment: a request never sees new faults with
        # the old random stream, even when set from another thread.
        self._state = (faults, faults.new_random())

    def set_faults(self, faults: Faults | None = None, /, **changes: Any) -> Faults:
        """Replace the faults, or change some fields of the current ones; returns them.

        >>> proxy.set_faults(error_5xx=0.0)          # the backend recovers
        >>> proxy.set_faults(Faults(reset=1.0))      # everything breaks
        """
        new = dataclasses.replace(faults if faults is not None else self.faults, **changes)
        self.faults = new
        return new

    @property
    def port(self) -> int:
        """The port the proxy listens on (an error before ``start()``)."""
        if self._port is None:
            raise RuntimeError("the FaultProxy is not running; start it or use `async with`")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to use instead of the backend's, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"FaultProxy({where} -> {self.upstream}, {self.faults!r})"

    # -- life cycle ----------------------------------------------------------------

    async def start(self) -> str:
        """Start listening; returns ``url``."""
        if self._server is not None:
            raise RuntimeError("the FaultProxy is already running")
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self._wanted_port, limit=READ_SIZE
        )
        self._pool = UpstreamPool(
            self._upstream_host,
            self._upstream_port,
            timeout=self.timeout,
            max_connections=self.max_connections,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop listening, abort open connections and close the upstream connections."""
        server, pool = self._server, self._pool
        self._server = self._pool = None
        self._port = None
        if server is not None:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        if pool is not None:
            pool.close()
        # Let the closed transports run connection_lost and close their sockets.
        await asyncio.sleep(0)

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self, *, startup_timeout: float = 10.0) -> Iterator[FaultProxy]:
        """Run the proxy on its own event loop in a thread for the ``with`` block.

        For synchronous tests and benchmarks; ``faults`` and ``stats`` may be used from
        the calling thread meanwhile.

        >>> with FaultProxy(backend_url, Faults(latency=(0.001, 0.01))).run_in_thread() as p:
        ...     httpx.get(p.url + "/health")
        """
        ready = threading.Event()
        box: dict[str, Any] = {}

        async def main() -> None:
            stopping = asyncio.Event()
            try:
                await self.start()
                box["loop"], box["stopping"] = asyncio.get_running_loop(), stopping
            except BaseException as exc:
                box["error"] = exc
                raise
            finally:
                ready.set()
            try:
                await stopping.wait()
            finally:
                await self.stop()

        def run() -> None:
            with contextlib.suppress(BaseException):  # reported through box["error"]
                asyncio.run(main())

        thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        thread.start()
        if not ready.wait(startup_timeout):
            raise RuntimeError(f"the FaultProxy did not start within {startup_timeout} s")
        if "error" in box:
            thread.join()
            raise RuntimeError("the FaultProxy failed to start") from box["error"]
        try:
            yield self
        finally:
            box["loop"].call_soon_threadsafe(box["stopping"].set)
            thread.join(self.timeout + 5.0)

    # -- serving -------------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task, not start_server's, so stop() can cancel and await every one.
        client = ClientConnection(self._route, reader, writer)
        task = asyncio.get_running_loop().create_task(client.serve())
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
