"""An operation on a backend with hmac_signature auth is sent as a signed webhook."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from intentbridge.integration import Integrations
from intentbridge.integration.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)
from intentbridge.project import parse_config
from intentbridge.testing import LoopbackServer

SECRET = "hook-secret"


def receiver(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/order")
    async def hook(request: Request) -> dict[str, str]:
        body = await request.body()
        try:
            verify_signature(
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                SECRET,
                tolerance=60,
            )
        except SignatureError as exc:
            seen.append({"error": str(exc)})
            return {"status": "bad"}
        seen.append(await request.json())
        return {"status": "ok"}

    return app


async def test_signed_webhook_is_verifiable_by_the_receiver() -> None:
    seen: list[dict[str, Any]] = []
    async with LoopbackServer(receiver(seen)) as url:
        config = parse_config(
            f"""
backends:
  hooks:
    base_url: {url}
    auth: {{type: hmac_signature, secret: "{SECRET}"}}
operations:
  notify_order:
    backend: hooks
    method: POST
    path: /hooks/order
    parameters:
      order: {{source: constant, value: A-17}}
    body: {{event: order.created, order: "{{order}}"}}
""",
            "bot.yaml",
            {},
        )
        async with Integrations.from_config(config) as integrations:
            result = await integrations.execute(
                "notify_order", {"order": "A-17"}, conversation_id=None, user_id=None
            )
    assert result.ok, result.error
    assert seen == [{"event": "order.created", "order": "A-17"}]
    assert SECRET not in repr(integrations.clients["hooks"])
