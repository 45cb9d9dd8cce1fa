"""Incoming webhooks: ``POST /webhooks/in/{source}`` becomes a message in a conversation.

Checked in this order, each failure answered without side effects: a known source,
a body within size, a valid signature with a fresh timestamp, JSON holding only
Unicode text, an event id seen for the first time. Only then is the event rendered
into the user's outbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jmespath
import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from intentbridge.channels.rest import NOT_UNICODE, SENDER_PATTERN, SENDER_RULE
from intentbridge.integration.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)
from intentbridge.integration.templates import render
from intentbridge.project.schema import IncomingWebhook
from intentbridge.stores.base import Store
from intentbridge.text import json_is_unicode

log = structlog.get_logger("intentbridge.channels.webhooks")

MAX_BODY = 64 * 1024
_SENDER = re.compile(SENDER_PATTERN)

Deliver = Callable[[str, str, str, str], Awaitable[None]]
"""``deliver(channel, user_id, text, message_id)`` puts a message in a user's outbox."""


def webhook_router(
    sources: dict[str, IncomingWebhook], store: Callable[[], Store], deliver: Deliver
) -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/in/{source}", status_code=202)
    async def incoming(source: str, request: Request) -> dict[str, Any]:
        settings = sources.get(source)
        if settings is None:
            raise HTTPException(404, f"no incoming webhook named {source!r}")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"body larger than {MAX_BODY} bytes")
        try:
            verify_signature(
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                settings.secret,
                tolerance=settings.tolerance,
            )
        except SignatureError as exc:
            log.warning("webhook_rejected", source=source, reason=str(exc))
            raise HTTPException(401, str(exc)) from None
        try:
            event = json.loads(body)
        except ValueError:
            raise HTTPException(400, "body is not JSON") from None
        except RecursionError:
            raise HTTPException(400, "body nests JSON too deeply") from None
        if not isinstance(event, dict):
            raise HTTPException(400, "the event must be a JSON object")
        if not json_is_unicode(event):
            log.warning("webhook_rejected", source=source, reason="lone surrogate in the event")
            # the REST channel's answer to the same body: FastAPI's 422, without the value
            raise RequestValidationError(
                [{"type": "string_unicode", "loc": ("body",), "msg": NOT_UNICODE}]
            )
        event_id = jmespath.search(settings.event_id, event)
        user_id = jmespath.search(settings.user, event)
        if not isinstance(event_id, str | int) or not isinstance(user_id, str) or not user_id:
            raise HTTPException(
                422,
                f"the event needs an id at {settings.event_id!r} and a user at {settings.user!r}",
            )
        if _SENDER.fullmatch(user_id) is None:
            # the user's conversation and outbox are addressed by this id: one that no
            # URL can name would fill an outbox nobody can read
            raise HTTPException(
                422,
                f"the user at {settings.user!r} must be {SENDER_RULE}",
            )
        if not await store().remember_event(source, str(event_id)):
            log.info("webhook_replay", source=source, event_id=str(event_id))
            raise HTTPException(409, "an event with this id was already received")
        kind = jmespath.search(settings.event_type, event)
        template = settings.messages.get(str(kind))
        if template is None:
            log.info("webhook_ignored", source=source, event_type=str(kind))
            return {"status": "ignored", "id": str(event_id)}
        text = render(template, event=event)
        await deliver(settings.channel, user_id, text, f"{source}:{event_id}")
        log.info("webhook_delivered", source=source, event_id=str(event_id))
        return {"status": "delivered", "id": str(event_id)}

    return router
