"""The REST channel, compatible with Rasa's: existing chat widgets and clients work unchanged.

``POST /webhooks/rest/webhook`` with ``{"sender": "...", "message": "..."}`` answers a
JSON list of ``{"recipient_id", "text", "buttons"?}``; with ``?stream=true`` the same
objects come back one JSON object a line as they are produced.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentbridge.conversation.locks import ConversationBusyError
from intentbridge.observability.logging import redact_server_logs
from intentbridge.observability.metrics import count_turn_failure
from intentbridge.text import is_unicode
from intentbridge.types import Identity, Message, Reply

log = structlog.get_logger("intentbridge.channels.rest")

TOKEN_ENV = "INTENTBRIDGE_REST_TOKEN"  # noqa: S105 - the name of a variable, not a secret
CHANNEL = "rest"
MAX_MESSAGE_CHARS = 4000
_SENDER_CHAR = r"[\w.@:+-]"
_MAX_SENDER = 128
#: A sender id, on every channel: what the conversation and outbox URLs can name.
SENDER_PATTERN = rf"^{_SENDER_CHAR}{{1,{_MAX_SENDER}}}$"
#: The same, in words, for error messages.
SENDER_RULE = f"1-{_MAX_SENDER} letters, digits or . @ : + - _"
MAX_BODY_BYTES = 64 * 1024  # a message, an id and some metadata; never megabytes
MAX_JSON_DEPTH = 32  # the body object is level 1; metadata deeper than this is no chat
_TOO_DEEP = f"the body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep"
NOT_UNICODE = (
    "text must be valid Unicode: a \\ud800-\\udfff escape is only allowed as half of a "
    "surrogate pair"
)

Handler = Callable[[Message], Awaitable[list[Reply]]]


class RestMessage(BaseModel):
    """What a client posts. Unknown fields are ignored, as Rasa does."""

    model_config = ConfigDict(extra="ignore")

    # the length checked apart from the characters: the clearer error for each
    sender: str = Field(min_length=1, max_length=_MAX_SENDER, pattern=rf"^{_SENDER_CHAR}+$")
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    message_id: str | None = Field(None, max_length=128)
    metadata: dict[str, Any] | None = None


def reply_json(reply: Reply, recipient: str) -> dict[str, Any]:
    out: dict[str, Any] = {"recipient_id": recipient, "text": reply.text}
    if reply.buttons:
        out["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    return out


class SafeJSONResponse(JSONResponse):
    """A JSON response that can always be sent.

    Text UTF-8 cannot carry (a lone surrogate that came from a backend's JSON, say)
    is written as a ``\\udXXX`` escape instead of failing the response with a 500;
    the body stays valid JSON and loses nothing.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def check_channel_token(
    expected: str | None, query_tokens: Sequence[str], authorization: str | None
) -> None:
    """Raise unless the request carries the channel token, as ``?token=`` or a bearer.

    ``query_tokens`` are all the ``token`` query values, in order. Empty values
    (``?token=``, ``Bearer ``) carry no token and are ignored, so a client that always
    appends ``?token=`` still authenticates with its ``Authorization: Bearer`` header.
    Every token a request does carry must be the same one: ``?token=a&token=b``, or a
    query token that differs from the bearer, is refused with 400 rather than resolved
    by picking one (a proxy and this server could disagree about which one counted).
    No token is 401, a wrong one too.

    >>> check_channel_token("s3cr3t", ["", "s3cr3t"], None)  # passes
    """
    if expected is None:
        return
    given = {t for t in query_tokens if t}
    if authorization and authorization[:7].lower() == "bearer " and authorization[7:]:
        given.add(authorization[7:])
    if len(given) > 1:
        raise HTTPException(
            status_code=400,
            detail="the channel token was given more than once, with different values; "
            "send it once, as ?token= or as an Authorization: Bearer header",
        )
    if not given or not hmac.compare_digest(given.pop().encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="missing or wrong channel token")


def rest_router(handle: Handler, *, token: str | None = None) -> APIRouter:
    """Routes of the REST channel; ``token`` (or $INTENTBRIDGE_REST_TOKEN) guards them."""
    expected = token if token is not None else os.environ.get(TOKEN_ENV) or None
    redact_server_logs()  # ?token= must not reach uvicorn's logs, whatever app mounts this
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
        token: Annotated[list[str] | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse | StreamingResponse:
        check_channel_token(expected, token or [], authorization)
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
        return SafeJSONResponse([reply_json(r, body.sender) for r in replies])

    @router.get("/webhooks/rest/")
    async def channel_health() -> dict[str, str]:
        return {"status": "ok"}

    # load balancers and uptime checks probe with HEAD: the GET answer without its body
    router.add_api_route(
        "/webhooks/rest/", channel_health, methods=["HEAD"], include_in_schema=False
    )

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
    would only puzzle people trying the bot. Errors are FastAPI's usual 422, each with
    where (``loc``), what (``msg``) and ``type`` only: never the value sent, which is
    the user's message (or a secret pasted into it) and may not even be encodable.
    Refused besides what the model checks: JSON nested deeper than
    :data:`MAX_JSON_DEPTH` and strings with a lone surrogate (``"\\ud800"``), which
    JSON's syntax allows but no Unicode text holds.
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _invalid("json_too_deep", _TOO_DEEP) from None
    except UnicodeDecodeError:
        raise _invalid("json_invalid", "the body must be JSON encoded as UTF-8") from None
    except ValueError:
        raise _invalid(
            "json_invalid", 'the body must be JSON: {"sender": "...", "message": "..."}'
        ) from None
    _check_json(data)
    try:
        return RestMessage.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None


def _invalid(kind: str, msg: str, field: str | None = None) -> RequestValidationError:
    loc = ("body",) if field is None else ("body", field)
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])


def _check_json(data: Any) -> None:
    """Refuse nesting past MAX_JSON_DEPTH and lone surrogates, without recursion."""
    fields = RestMessage.model_fields
    # (value, depth, top-level field it sits in); only model field names are reported
    todo: list[tuple[Any, int, str | None]] = [(data, 1, None)]
    while todo:
        value, depth, field = todo.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _invalid("json_too_deep", _TOO_DEEP, field)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                inner = field
                if isinstance(key, str):
                    if depth == 1:
                        inner = key if key in fields else None
                    if not is_unicode(key):
                        raise _invalid("string_unicode", NOT_UNICODE, inner)
                todo.append((item, depth + 1, inner))
        elif isinstance(value, str) and not is_unicode(value):
            raise _invalid("string_unicode", NOT_UNICODE, field)


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
        count_turn_failure()
        log.exception("turn_failed", sender=message.sender)
        return [Reply("Something went wrong on my side. Please try again.")]
