"""A fake backend on a real loopback server, shared by the integration tests.

Tests keep out of each other's way by using their own ``key`` in paths.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from intentbridge.project.schema import Backend, BotConfig
from intentbridge.testing import LoopbackServer, fast_retries

BEARER = "bearer-s3cret-value"
API_KEY = "apikey-s3cret-value"


class FakeBackend:
    """A small bank-like API whose misbehaviour each test chooses through the URL."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seen: dict[str, list[dict[str, Any]]] = {}
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]

        @app.api_route("/echo/{rest:path}", methods=methods)
        async def echo(request: Request, rest: str) -> Any:
            body = await request.body()
            return {
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "query": request.scope["query_string"].decode("latin-1"),
                "query_items": list(request.query_params.multi_items()),
                "headers": dict(request.headers),
                "json": json.loads(body) if body else None,
            }

        @app.api_route("/status/{code}", methods=methods)
        async def status(code: int, request: Request) -> Response:
            headers = {}
            if "retry_after" in request.query_params:
                headers["Retry-After"] = request.query_params["retry_after"]
            if "text" in request.query_params:
                return Response(request.query_params["text"], status_code=code, headers=headers)
            return JSONResponse({"detail": f"status {code}"}, status_code=code, headers=headers)

        @app.api_route("/flaky/{key}", methods=methods)
        async def flaky(key: str, request: Request) -> Response:
            self.counts[key] += 1
            self.seen.setdefault(key, []).append(dict(request.headers))
            fail = int(request.query_params.get("fail", "1"))
            code = int(request.query_params.get("code", "503"))
            if self.counts[key] <= fail:
                headers = {}
                if "retry_after" in request.query_params:
                    headers["Retry-After"] = request.query_params["retry_after"]
                return JSONResponse({"detail": "try again"}, status_code=code, headers=headers)
            return JSONResponse({"attempt": self.counts[key]})

        @app.api_route("/slow/{key}", methods=methods)
        async def slow(key: str, request: Request) -> Any:
            self.counts[key] += 1
            await asyncio.sleep(float(request.query_params.get("delay", "0.5")))
            return {"slow": True}

        @app.get("/secure/bearer")
        async def bearer(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {BEARER}":
                return JSONResponse({"detail": "bad token"}, status_code=401)
            return JSONResponse({"ok": True})

        @app.get("/secure/apikey")
        async def apikey(request: Request) -> Response:
            given = request.headers.get("x-api-key") or request.query_params.get("api_key")
            if given != API_KEY:
                return JSONResponse({"detail": "bad key"}, status_code=403)
            return JSONResponse({"ok": True, "query": request.scope["query_string"].decode()})

        @app.get("/customers/{customer}/accounts")
        async def accounts(customer: str) -> Any:
            if customer != "u1":
                return JSONResponse({"detail": "no such customer"}, status_code=404)
            return [
                {"id": "acc-1", "name": "checking", "balance": 1250.5, "currency": "EUR"},
                {"id": "acc-2", "name": "savings", "balance": 20, "currency": "EUR"},
            ]

        @app.post("/transfers")
        async def transfers(request: Request) -> Response:
            payload = await request.json()
            key = request.headers.get("idempotency-key", "")
            self.counts["transfers:" + key] += 1
            if payload.get("amount") in (None, "0.00"):
                return JSONResponse(
                    {"errors": [{"code": "amount", "text": "amount must be positive"}]},
                    status_code=422,
                )
            return JSONResponse(
                {"transfer": {"id": "t-1", "status": "done", "amount": payload["amount"]}},
                status_code=201,
            )

        return app


@pytest.fixture(scope="session")
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="session")
def base_url(fake: FakeBackend) -> Iterator[str]:
    with LoopbackServer(fake.app) as url:
        yield url


@pytest.fixture
def key() -> str:
    """A fresh name so a test's counters are its own."""
    return uuid.uuid4().hex


@pytest.fixture(autouse=True)
def sleeps() -> Iterator[list[float]]:
    """Retries record their waits instead of sleeping."""
    with fast_retries() as recorded:
        yield recorded


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _backend(url: str, **settings: Any) -> Backend:
    return Backend.model_validate({"base_url": url, **settings})


def _bot(url: str, operations: dict[str, Any], **backend_settings: Any) -> BotConfig:
    return BotConfig.model_validate(
        {
            "backends": {"bank": {"base_url": url, **backend_settings}},
            "operations": {name: {"backend": "bank", **op} for name, op in operations.items()},
        }
    )


@pytest.fixture
def make_backend() -> Any:
    """``make_backend(url, **settings) -> Backend``."""
    return _backend


@pytest.fixture
def make_bot() -> Any:
    """``make_bot(url, {op_name: op_fields}, **backend_settings) -> BotConfig`` (backend "bank")."""
    return _bot
