"""The REST channel, compatible with Rasa's: existing chat widgets and clients work unchanged.

``POST /webhooks/rest/webhook`` with ``{"sender": "...", "message": "..."}`` answers a
JSON list of ``{"recipient_id", "text", "buttons"?}``; with ``?stream=true`` the same
objects come back one JSON object a line as they are produced.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentbridge.conversation.locks import ConversationBusyError
from intentbridge.types import Identity, Message, Reply

log = structlog.get_logger("intentbridge.channels.rest")

TOKEN_ENV = "INTENTBRIDGE_REST_TOKEN"  # noqa: S105 - the name of a variable, not a secret
CHANNEL = "rest"
MAX_MESSAGE_CHARS = 4000
MAX_BODY_BYTES = 64 * 1024  # a message, an id and some metadata; never megabytes

Handler = Callable[[Message], Awaitable[list[Reply]]]


class RestMessage(BaseModel):
    """What a client posts. Unknown fields are ignored, as Rasa does."""

    model_config = ConfigDict(extra="ignore")

    sender: str = Field(min_length=1, max_length=128, pattern=r"^[\w.@:+-]+$")
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    message_id: str | None = Field(None, max_length=128)
    metadata: dict[str, Any] | None = None


def reply_json(reply: Reply, recipient: str) -> dict[str, Any]:
    out: dict[str, Any] = {"recipient_id": recipient, "text": reply.text}
    if reply.buttons:
        out["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    return out


def check_channel_token(
    expected: str | None, query_token: str | None, authorization: str | None
) -> None:
    """Raise 401 unless the request carries the channel token (``?token=`` or bearer)."""
    if expected is None:
        return
    given = query_token
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:]
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong channel token")


def rest_router(handle: Handler, *, token: str | None = None) -> APIRouter:
    """Routes of the REST channel; ``token`` (or $INTENTBRIDGE_REST_TOKEN) guards them."""
    expected = token if token is not None else os.environ.get(TOKEN_ENV) or None
    router = APIRouter()

    @router.post(
        "/webhooks/rest/webhook",
        response_model=None,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": RestMessage.model_json_schema()}},
            }
        },
    )
    async def webhook(
        request: Request,
        stream: Annotated[bool, Query()] = False,
        token: Annotated[str | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse | StreamingResponse:
        check_channel_token(expected, token, authorization)
        body = parse_rest_message(await read_body(request, MAX_BODY_BYTES))
        message = Message(
            text=body.message,
            sender=body.sender,
            channel=CHANNEL,
            # demo identity: the REST sender names the user; a signed channel replaces this
            identity=Identity(user_id=body.sender, channel=CHANNEL, verified=expected is not None),
            message_id=body.message_id,
            metadata=body.metadata or {},
        )
        if stream:
            return StreamingResponse(_stream(handle, message), media_type="application/x-ndjson")
        replies = await _safe_handle(handle, message)
        return JSONResponse([reply_json(r, body.sender) for r in replies])

    @router.get("/webhooks/rest/")
    async def channel_health() -> dict[str, str]:
        return {"status": "ok"}

    return router


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_rest_message(raw: bytes) -> RestMessage:
    """The posted message, whatever Content-Type the client sent (as Rasa accepts it).

    ``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; refusing that
    would only puzzle people trying the bot. Errors are FastAPI's usual 422.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": 'the body must be JSON: {"sender": "...", "message": "..."}',
                    "input": raw[:200].decode("utf-8", "replace"),
                }
            ]
        ) from None
    try:
        return RestMessage.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def _stream(handle: Handler, message: Message) -> AsyncIterator[bytes]:
    for reply in await _safe_handle(handle, message):
        yield (json.dumps(reply_json(reply, message.sender)) + "\n").encode()


async def _safe_handle(handle: Handler, message: Message) -> list[Reply]:
    try:
        return await handle(message)
    except ConversationBusyError:
        return [Reply("I'm still working on your previous message. One moment, please.")]
    except Exception:
        # a bug must not become a stack trace for the user; it is logged in full here
        log.exception("turn_failed", sender=message.sender)
        return [Reply("Something went wrong on my side. Please try again.")]
