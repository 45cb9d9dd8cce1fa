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


@pytest.mark.parametrize("customer", ["../alice", "alice\n", "a" * 129, "al ice", "alice/x"])
def test_a_user_id_no_conversation_url_can_name_is_refused(
    served: BotClient, customer: str
) -> None:
    """Its outbox could never be read; nothing is remembered, so a fixed event goes through."""
    event = json.loads(payment())
    body = json.dumps({**event, "customer": customer}).encode()
    response = post(served, body, signature_headers(body, SECRET))
    assert response.status_code == 422
    assert "user" in response.json()["detail"]
    fixed = json.dumps({**event, "customer": "alice"}).encode()
    assert post(served, fixed, signature_headers(fixed, SECRET)).status_code == 202


# --- text no UTF-8 can carry: a clear 422 before any side effect, never a 500 --------

MARK = "zqxj"  # next to every lone surrogate sent; an answer or log that holds it echoed it
FIELDS = ["id", "type", "customer", "account", "amount", "currency", "counterparty"]


def with_lone_surrogate(event_id: str, field: str) -> bytes:
    """A payment event whose ``field`` (or, for "key", a key) holds a ``\\ud800`` escape."""
    event = json.loads(payment(event_id))
    if field == "key":
        event[f"{MARK}\ud800"] = "x"
    else:
        event[field] = f"{event[field]}{MARK}\ud800"
    return json.dumps(event).encode()  # ASCII: the surrogate travels as a JSON escape


def assert_clear_422(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text[:300]
    assert MARK not in response.text
    [error] = response.json()["detail"]
    assert error["type"] == "string_unicode"
    assert "Unicode" in error["msg"]


@pytest.mark.parametrize("field", [*FIELDS, "key"])
def test_a_lone_surrogate_in_a_signed_event_is_a_clear_422_and_nothing_else(
    served: BotClient,
    field: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refused before the id is recorded, so the corrected event is still delivered."""
    event_id = f"evt-{field}-{uuid.uuid4()}"
    body = with_lone_surrogate(event_id, field)
    assert_clear_422(post(served, body, signature_headers(body, SECRET)))
    captured = capsys.readouterr()
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records)
    for output in (logged, captured.out, captured.err):
        assert "Traceback" not in output
        assert MARK not in output
    assert served.http.get("/conversations/alice/outbox").json() == []
    fixed = payment(event_id)
    assert post(served, fixed, signature_headers(fixed, SECRET)).status_code == 202


def test_a_repeated_event_with_a_lone_surrogate_is_a_422_each_time(served: BotClient) -> None:
    """The duplicate check never sees such an id: neither a 500 nor a 409."""
    body = with_lone_surrogate("evt-dup", "id")
    headers = signature_headers(body, SECRET)
    assert_clear_422(post(served, body, headers))
    assert_clear_422(post(served, body, headers))


def test_a_replay_that_adds_a_lone_surrogate_is_a_422_not_a_409(served: BotClient) -> None:
    body = payment("evt-replayed")
    assert post(served, body, signature_headers(body, SECRET)).status_code == 202
    altered = with_lone_surrogate("evt-replayed", "counterparty")
    assert_clear_422(post(served, altered, signature_headers(altered, SECRET)))
    response = post(served, body, signature_headers(body, SECRET))
    assert response.status_code == 409
    assert "evt-replayed" not in response.text  # the refusal names no sender text


def test_a_surrogate_pair_in_an_event_is_text_and_is_delivered(served: BotClient) -> None:
    event = json.loads(payment())
    event["counterparty"] = "ACME \U0001f600"
    body = json.dumps(event).encode()  # the pair travels as "\\ud83d\\ude00"
    assert b"\\ud83d\\ude00" in body
    assert post(served, body, signature_headers(body, SECRET)).status_code == 202
    [message] = served.http.get("/conversations/alice/outbox").json()
    assert message["text"] == "You received 42.00 EUR from ACME \U0001f600."


def test_a_surrogate_encoded_as_utf8_bytes_is_refused_too(served: BotClient) -> None:
    """json.loads decodes the bytes ED A0 80 to a lone surrogate; no escape is needed."""
    body = payment().replace(b"ACME GmbH", MARK.encode() + b"\xed\xa0\x80")
    assert_clear_422(post(served, body, signature_headers(body, SECRET)))
    assert served.http.get("/conversations/alice/outbox").json() == []
