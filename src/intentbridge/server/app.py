"""The HTTP server: channels, health, readiness and metrics around one :class:`Bot`.

>>> app = create_app(project)            # uvicorn intentbridge.server.app:... or
>>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from intentbridge.bot import Bot, BotSettings
from intentbridge.channels.rest import rest_router
from intentbridge.project.loader import BotProject
from intentbridge.types import Message, Reply


def create_app(project: BotProject, settings: BotSettings | None = None) -> FastAPI:
    """A FastAPI app that starts the bot on startup and closes it on shutdown."""
    holder: dict[str, Bot] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        bot = await Bot.from_project(project, settings)
        holder["bot"] = bot
        try:
            yield
        finally:
            await bot.aclose()

    app = FastAPI(title=f"intentbridge: {project.config.name}", lifespan=lifespan)

    async def handle(message: Message) -> list[Reply]:
        return await holder["bot"].handle(message)

    app.include_router(rest_router(handle))

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
