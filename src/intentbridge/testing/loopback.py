"""Run any ASGI app as a real HTTP server on 127.0.0.1, for tests.

The server is uvicorn on a port the OS picks, in a background thread with its own
event loop, so a slow handler never blocks the test and the client talks real HTTP
over a real socket. It is ready (lifespan started, socket listening) when the
``with`` block begins and fully stopped when it ends.

>>> app = FastAPI()
>>> with LoopbackServer(app) as base_url:          # in a sync fixture or test
...     httpx.get(base_url + "/health")
>>> async with LoopbackServer(app) as base_url:    # in an async test
...     ...

A module-scoped fixture keeps one server for many tests::

    @pytest.fixture(scope="module")
    def backend_url() -> Iterator[str]:
        with LoopbackServer(app) as url:
            yield url
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["LoopbackError", "LoopbackServer"]


class LoopbackError(RuntimeError):
    """The loopback server could not start (or stop) in time."""


class LoopbackServer:
    """A uvicorn server for ``app`` on ``127.0.0.1:<free port>`` in a thread.

    ``url`` is the base URL (``http://127.0.0.1:PORT``) once started.
    ``graceful_timeout`` bounds how long stopping waits for requests still running
    (a test's deliberately slow handler, say) before cancelling them.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        graceful_timeout: int = 2,
        lifespan: str = "auto",
        ws: str = "auto",
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        self._config_options: dict[str, Any] = {
            "lifespan": lifespan,
            "ws": ws,
            "http": "h11",
            "loop": "asyncio",
            "log_config": None,  # leave the test's logging configuration alone
            "log_level": "warning",
            "access_log": False,
            "timeout_graceful_shutdown": graceful_timeout,
            **uvicorn_options,
        }
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        if self.port is None:
            raise LoopbackError("the loopback server is not running; use it as a context manager")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "stopped"
        return f"LoopbackServer({where})"

    def start(self) -> str:
        """Start serving and wait until ready; returns the base URL."""
        if self._thread is not None:
            raise LoopbackError("the loopback server is already running")
        # Bind here, before the thread starts, so the port is known and listening at
        # once (no race for a "free" port between picking it and binding it).
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets
        # whose proto says TCP, and without it every keep-alive response waits ~40 ms
        # for a delayed ACK (Nagle).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **self._config_options)
        server = uvicorn.Server(config)
        self._server = server
        self._error = None
        thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"loopback-{self.port}", daemon=True
        )
        self._thread = thread
        thread.start()

        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive():
                self._cleanup()
                raise LoopbackError(
                    f"the app failed to start (lifespan startup error?): {self._error!r}"
                ) from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise LoopbackError(f"the app did not start within {self.startup_timeout} s")
            time.sleep(0.005)
        return self.url

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            # capture_signals() leaves signals alone outside the main thread.
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit from a failed lifespan too
            self._error = exc

    def stop(self) -> None:
        """Stop serving, waiting for running requests up to the graceful timeout."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        grace = float(self._config_options.get("timeout_graceful_shutdown") or 0)
        thread.join(timeout=grace + 5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)
        self._cleanup()
        if thread.is_alive():
            raise LoopbackError("the loopback server did not stop")

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._server = None
        self._thread = None
        self.port = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
