"""The HTTP server: channels, webhooks, outbox, health, readiness and metrics around a Bot.

>>> app = create_app(project)
>>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from intentbridge.bot import Bot, BotSettings, conversation_key
from intentbridge.channels.rest import (
    SENDER_PATTERN,
    TOKEN_ENV,
    SafeJSONResponse,
    check_channel_token,
    reply_json,
    rest_router,
)
from intentbridge.channels.webhooks import webhook_router
from intentbridge.observability.http_metrics import HttpMetricsMiddleware
from intentbridge.observability.tracing import TraceContextMiddleware, ensure_tracing
from intentbridge.project.loader import BotProject
from intentbridge.stores.base import Store
from intentbridge.types import Message, Reply


def create_app(project: BotProject, settings: BotSettings | None = None) -> FastAPI:
    """A FastAPI app that starts the bot on startup and closes it on shutdown."""
    holder: dict[str, Bot] = {}
    config = project.config
    rest_token = config.channel("rest").token or os.environ.get(TOKEN_ENV) or None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ensure_tracing()  # $INTENTBRIDGE_TRACING, unless configured in code already
        bot = await Bot.from_project(project, settings)
        holder["bot"] = bot
        bot.start_background()
        try:
            yield
        finally:
            await bot.aclose()

    # every JSON answer can be sent, even text from a backend that UTF-8 cannot carry
    app = FastAPI(
        title=f"intentbridge: {config.name}",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    # a caller's traceparent makes each turn part of its trace (only while tracing is on)
    app.add_middleware(TraceContextMiddleware)
    app.add_middleware(HttpMetricsMiddleware)  # outermost: sees every status, and errors
    app.add_exception_handler(RequestValidationError, validation_error)

    async def handle(message: Message) -> list[Reply]:
        return await holder["bot"].handle(message)

    async def deliver(channel: str, user_id: str, text: str, message_id: str) -> None:
        key = conversation_key(channel, user_id)
        await holder["bot"].notify(key, user_id, text, message_id=message_id)

    def store() -> Store:
        return holder["bot"].store

    # rest_router also keeps ?token= (and other secret query values) out of uvicorn's logs
    app.include_router(rest_router(handle, token=rest_token))
    app.include_router(webhook_router(dict(config.webhooks), store, deliver))

    @app.get("/conversations/{sender}/outbox")
    async def outbox(
        sender: Annotated[str, Path(pattern=SENDER_PATTERN)],
        channel: Annotated[str, Query(pattern=r"^[a-z_]{1,32}$")] = "rest",
        token: Annotated[list[str] | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        """Proactive messages waiting for ``sender``; reading delivers them."""
        check_channel_token(rest_token, token or [], authorization)
        replies = await holder["bot"].take_outbox(conversation_key(channel, sender), sender)
        return [reply_json(r, sender) for r in replies]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        checks = await holder["bot"].ready()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    # load balancers probe with HEAD: the GET answer (and status) without the body
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
    app.add_api_route("/ready", ready, methods=["HEAD"], include_in_schema=False)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.state.bot_holder = holder
    return app


async def validation_error(_: Request, exc: Exception) -> Response:
    """FastAPI's 422, with where, what and type of each error but never the value sent.

    The value is what a user typed (or a secret pasted by mistake), and text that no
    UTF-8 can carry would turn the answer into a 500.
    """
    found = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [{"type": e.get("type"), "loc": e.get("loc"), "msg": e.get("msg")} for e in found]
    return SafeJSONResponse({"detail": errors}, status_code=422)
