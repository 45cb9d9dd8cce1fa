"""The REST channel over real HTTP: whatever a client posts gets a clear answer, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from intentbridge.channels.rest import MAX_JSON_DEPTH, MAX_MESSAGE_CHARS, rest_router
from intentbridge.testing import LoopbackServer
from intentbridge.types import Message, Reply

WEBHOOK = "/webhooks/rest/webhook"
TOKEN = "chan-t0ken-GOOD"
MARK = "zqxj"  # in every generated message; an error body that holds it echoed the input
BACKEND_TEXT = "balance \ud800 from a backend"  # a lone surrogate, as a backend's JSON may hold


async def echo(message: Message) -> list[Reply]:
    """Say back what was said; two messages stand for backend data and for a bug."""
    if message.text == "backend surrogate":
        return [Reply(BACKEND_TEXT)]
    if message.text == "crash":
        raise RuntimeError("a bug in the bot")
    return [Reply(f"you said: {message.text}")]


def serve(handler: Any, **router: Any) -> LoopbackServer:
    app = FastAPI()
    app.include_router(rest_router(handler, **router))
    return LoopbackServer(app)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """The REST channel, without a channel token, saying back what it is sent."""
    with serve(echo) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def guarded() -> Iterator[httpx.Client]:
    """The REST channel guarded by a channel token."""
    with serve(echo, token=TOKEN) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def post_raw(http: httpx.Client, body: str, **params: str) -> httpx.Response:
    """Post ``body`` as it is: JSON escapes such as ``\\ud800`` reach the server unchanged."""
    return http.post(
        WEBHOOK,
        params=params,
        content=body.encode(),
        headers={"content-type": "application/json"},
    )


# Text with lone surrogates drawn often: JSON may escape them, no UTF-8 can carry them.
any_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=any_text,
    padding=st.sampled_from([0, MAX_MESSAGE_CHARS - 10, MAX_MESSAGE_CHARS + 1]),
    field=st.sampled_from(["message", "sender", "message_id", "metadata"]),
    stream=st.booleans(),
)
def test_any_text_gets_an_answer_and_no_error_echoes_it(
    client: httpx.Client, text: str, padding: int, field: str, stream: bool
) -> None:
    """Never a 500, and a 4xx names what was wrong without repeating what was sent."""
    said = MARK + text + "a" * padding
    body: dict[str, Any] = {"sender": "s5", "message": "hi"}
    body[field] = {said: said} if field == "metadata" else said
    response = post_raw(client, json.dumps(body), **({"stream": "true"} if stream else {}))
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert response.status_code == 422
        assert MARK not in response.text
        for error in response.json()["detail"]:
            assert set(error) == {"type", "loc", "msg"}


@pytest.mark.parametrize(
    "body",
    [
        '{"sender":"s5","message":"hi \\ud800 there"}',
        '{"sender":"s6\\ud800","message":"hi"}',
        '{"sender":"s6b","message":"hi","message_id":"\\udfff"}',
        '{"sender":"s6c","message":"hi","metadata":{"\\ud800":"\\ud800"}}',
        '{"sender":"s6d","message":"\\ud800' + "a" * MAX_MESSAGE_CHARS + '"}',
    ],
)
def test_a_lone_surrogate_is_a_clear_422(client: httpx.Client, body: str) -> None:
    response = post_raw(client, body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "string_unicode"
    assert "Unicode" in error["msg"]


def test_a_surrogate_pair_is_text_and_is_accepted(client: httpx.Client) -> None:
    response = post_raw(client, '{"sender":"s7","message":"smile \\ud83d\\ude00"}')
    assert response.status_code == 200
    assert response.json()[0]["text"] == "you said: smile \U0001f600"


def test_a_too_long_message_is_refused_without_echoing_it(client: httpx.Client) -> None:
    long = "b" * (MAX_MESSAGE_CHARS + 1)
    response = client.post(WEBHOOK, json={"sender": "s8", "message": long})
    assert response.status_code == 422
    assert "bbbb" not in response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "message"] and error["type"] == "string_too_long"


def test_malformed_json_is_refused_without_echoing_it(client: httpx.Client) -> None:
    response = post_raw(client, '{"sender":"u1","message":"zqxj secret')
    assert response.status_code == 422
    assert MARK not in response.text
    assert "must be JSON" in response.json()["detail"][0]["msg"]


def test_a_body_not_in_utf8_is_refused_so(client: httpx.Client) -> None:
    body = '{"sender":"s4","message":"caf\xe9"}'.encode("latin-1")
    response = client.post(WEBHOOK, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "UTF-8" in response.json()["detail"][0]["msg"]


def test_a_reply_no_utf8_can_carry_is_still_sent(client: httpx.Client) -> None:
    """Backend data with a lone surrogate: the reply is escaped JSON, not a 500."""
    response = client.post(WEBHOOK, json={"sender": "s9", "message": "backend surrogate"})
    assert response.status_code == 200
    assert response.json() == [{"recipient_id": "s9", "text": BACKEND_TEXT}]


def test_a_turn_that_raises_is_an_apology_and_is_counted(client: httpx.Client) -> None:
    before = REGISTRY.get_sample_value("intentbridge_turn_failures_total") or 0.0
    response = client.post(WEBHOOK, json={"sender": "s10", "message": "crash"})
    assert response.status_code == 200
    assert "Something went wrong" in response.json()[0]["text"]
    assert REGISTRY.get_sample_value("intentbridge_turn_failures_total") == before + 1


def nested(depth: int, kind: str) -> str:
    """A metadata value ``depth`` arrays (or objects) deep."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, 1_000, 5_000])
def test_deep_nesting_is_a_clear_422(client: httpx.Client, depth: int, kind: str) -> None:
    """The body is level 1, metadata level 2: anything past MAX_JSON_DEPTH is refused."""
    body = '{"sender":"n1","message":"hi","metadata":{"a":' + nested(depth, kind) + "}}"
    response = post_raw(client, body)
    assert response.status_code == 422, response.text[:300]
    [error] = response.json()["detail"]
    assert error["type"] == "json_too_deep"
    assert f"more than {MAX_JSON_DEPTH} levels" in error["msg"]


def test_a_whole_body_nested_deeply_is_a_clear_422(client: httpx.Client) -> None:
    response = post_raw(client, "[" * 30_000 + "]" * 30_000)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_too_deep"


def test_nesting_up_to_the_limit_is_accepted(client: httpx.Client) -> None:
    body = '{"sender":"n2","message":"hi","metadata":{"a":' + nested(MAX_JSON_DEPTH - 2, "array")
    response = post_raw(client, body + "}}")
    assert response.status_code == 200
    assert response.json()[0]["text"] == "you said: hi"


def test_the_channel_health_answers_head(client: httpx.Client) -> None:
    response = client.head("/webhooks/rest/")
    assert response.status_code == 200
    assert response.content == b""


def status_with(http: httpx.Client, query: list[tuple[str, str]], bearer: str | None) -> int:
    headers = {} if bearer is None else {"authorization": f"Bearer {bearer}"}
    body = {"sender": "t1", "message": "hi"}
    return http.post(WEBHOOK, params=query, json=body, headers=headers).status_code


def test_an_empty_query_token_leaves_the_bearer_to_count(guarded: httpx.Client) -> None:
    assert status_with(guarded, [("token", "")], TOKEN) == 200


@pytest.mark.parametrize("tokens", [[TOKEN, "x"], ["x", TOKEN]])
def test_conflicting_query_tokens_are_a_bad_request(
    guarded: httpx.Client, tokens: list[str]
) -> None:
    """Neither the first nor the last of two different tokens wins."""
    assert status_with(guarded, [("token", t) for t in tokens], None) == 400


tokens = st.sampled_from(["", TOKEN, "wrong", TOKEN + "x"]) | st.text(max_size=12)


@settings(max_examples=80, deadline=None)
@given(query=st.lists(tokens, max_size=3), bearer=st.none() | st.sampled_from([TOKEN, "no"]))
def test_the_channel_token_counts_only_when_every_token_given_is_it(
    guarded: httpx.Client, query: list[str], bearer: str | None
) -> None:
    """Empty tokens are ignored; different tokens are 400; none or a wrong one is 401."""
    given_tokens = {t for t in [*query, bearer or ""] if t}
    expected = 200 if given_tokens == {TOKEN} else 400 if len(given_tokens) > 1 else 401
    assert status_with(guarded, [("token", t) for t in query], bearer) == expected
