"""Incoming webhooks: signed, fresh and new events become messages to the user."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from intentbridge.integration.signing import signature_headers
from intentbridge.project import BotProject
from intentbridge.testing.bot import BotClient, serve_bot

SECRET = "demo-webhook-secret"


@pytest.fixture
def served(project: BotProject, store_url: str) -> Iterator[BotClient]:
    with serve_bot(project, store_url) as bot:
        yield bot


def payment(event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or str(uuid.uuid4()),
            "type": "payment.received",
            "customer": "alice",
            "account": "acc-alice-chk",
            "amount": "42.00",
            "currency": "EUR",
            "counterparty": "ACME GmbH",
        }
    ).encode()


def post(bot: BotClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return bot.http.post(
        "/webhooks/in/corebank",
        content=body,
        headers={"content-type": "application/json", **headers},
    )


def test_signed_event_reaches_the_users_outbox_once(served: BotClient) -> None:
    body = payment()
    assert post(served, body, signature_headers(body, SECRET)).status_code == 202
    [message] = served.http.get("/conversations/alice/outbox").json()
    assert message["text"] == "You received 42.00 EUR from ACME GmbH."
    assert served.http.get("/conversations/alice/outbox").json() == []  # delivered


def test_outbox_messages_come_with_the_next_reply(served: BotClient) -> None:
    body = payment()
    post(served, body, signature_headers(body, SECRET))
    replies = served.send("hi")
    assert replies[0]["text"].startswith("You received 42.00 EUR")
    assert "banking assistant" in replies[1]["text"]


def test_wrong_signature_is_rejected(served: BotClient) -> None:
    body = payment()
    assert post(served, body, signature_headers(body, "not-the-secret")).status_code == 401
    tampered = body.replace(b"42.00", b"4200.00")
    assert post(served, tampered, signature_headers(body, SECRET)).status_code == 401
    assert post(served, body, {}).status_code == 401
    assert served.http.get("/conversations/alice/outbox").json() == []


def test_stale_timestamp_is_rejected(served: BotClient) -> None:
    body = payment()
    old = signature_headers(body, SECRET, now=time.time() - 3600)
    response = post(served, body, old)
    assert response.status_code == 401
    assert "tolerance" in response.json()["detail"]


def test_replayed_event_is_rejected(served: BotClient) -> None:
    body = payment("evt-1")
    headers = signature_headers(body, SECRET)
    assert post(served, body, headers).status_code == 202
    assert post(served, body, headers).status_code == 409
    assert len(served.http.get("/conversations/alice/outbox").json()) == 1


def test_unknown_source_and_bad_bodies(served: BotClient) -> None:
    body = payment()
    headers = signature_headers(body, SECRET)
    assert served.http.post("/webhooks/in/nope", content=body, headers=headers).status_code == 404
    junk = b"not json"
    assert post(served, junk, signature_headers(junk, SECRET)).status_code == 400
    no_user = json.dumps({"id": "x", "type": "payment.received"}).encode()
    assert post(served, no_user, signature_headers(no_user, SECRET)).status_code == 422
