"""The HTTP server: channels, webhooks, outbox, health, readiness and metrics around a Bot.

>>> app = create_app(project)
>>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from intentbridge.bot import Bot, BotSettings, conversation_key
from intentbridge.channels.rest import TOKEN_ENV, check_channel_token, reply_json, rest_router
from intentbridge.channels.webhooks import webhook_router
from intentbridge.observability.tracing import TraceContextMiddleware, ensure_tracing
from intentbridge.project.loader import BotProject
from intentbridge.stores.base import Store
from intentbridge.types import Message, Reply

SENDER = r"^[\w.@:+-]{1,128}$"


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

    app = FastAPI(title=f"intentbridge: {config.name}", lifespan=lifespan)
    # a caller's traceparent makes each turn part of its trace (only while tracing is on)
    app.add_middleware(TraceContextMiddleware)

    async def handle(message: Message) -> list[Reply]:
        return await holder["bot"].handle(message)

    async def deliver(channel: str, user_id: str, text: str, message_id: str) -> None:
        key = conversation_key(channel, user_id)
        await holder["bot"].notify(key, user_id, text, message_id=message_id)

    def store() -> Store:
        return holder["bot"].store

    app.include_router(rest_router(handle, token=rest_token))
    app.include_router(webhook_router(dict(config.webhooks), store, deliver))

    @app.get("/conversations/{sender}/outbox")
    async def outbox(
        sender: Annotated[str, Path(pattern=SENDER)],
        channel: Annotated[str, Query(pattern=r"^[a-z_]{1,32}$")] = "rest",
        token: Annotated[str | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> list[dict[str, Any]]:
        """Proactive messages waiting for ``sender``; reading delivers them."""
        check_channel_token(rest_token, token, authorization)
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

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.state.bot_holder = holder
    return app
