"""Integrations.execute: build, middleware, send, map, record — end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from intentbridge.errors import ConfigError, IntegrationError
from intentbridge.integration import CallRecord, Integrations, RecordingHook
from intentbridge.project.schema import BotConfig
from intentbridge.types import Call, Money, Next, Result

OPERATIONS: dict[str, Any] = {
    "check_balance": {
        "intent": "check_balance",
        "path": "/customers/{customer}/accounts",
        "headers": {"X-Pin": "{pin}"},
        "parameters": {
            "customer": {"source": "user", "field": "user_id"},
            "pin": {"sensitive": True},
            "card_number": {"required": False},
        },
        "response": {"accounts": "[*].{name: name, balance: balance}", "first": "[0].id"},
        "reply": {"ok": "{% for a in data.accounts %}{{ a.balance | money }} {% endfor %}"},
    },
    "transfer": {
        "intent": "transfer_money",
        "method": "POST",
        "path": "/transfers",
        "moves_money": True,
        "body": {"amount": "{amount}", "currency": "{amount.currency}", "to": "{to}"},
        "parameters": {"amount": {"type": "money"}, "to": {}},
        "response": {"id": "transfer.id", "status": "transfer.status"},
        "error_reason": "errors[0].text",
    },
    "plain_post": {"method": "POST", "path": "/status/{code}", "parameters": {"code": {}}},
    "flaky_get": {"path": "/flaky/{key}", "query": {"fail": "1"}, "parameters": {"key": {}}},
}


@pytest.fixture
def config(base_url: str, make_bot: Any) -> BotConfig:
    config: BotConfig = make_bot(base_url, OPERATIONS, timeout=1)
    return config


@pytest.fixture
def records() -> RecordingHook:
    return RecordingHook()


@pytest.fixture
async def integrations(config: BotConfig, records: RecordingHook) -> AsyncIterator[Integrations]:
    async with Integrations.from_config(config, hooks=[records]) as ints:
        yield ints


async def test_happy_path_maps_the_response_and_records_redacted(
    integrations: Integrations, records: RecordingHook
) -> None:
    result = await integrations.execute(
        "check_balance",
        {"customer": "u1", "pin": "1234", "card_number": "4111111111111111"},
        conversation_id="conv-1",
        user_id="u1",
    )
    assert result.outcome == "ok"
    assert result.data == {
        "accounts": [{"name": "checking", "balance": 1250.5}, {"name": "savings", "balance": 20}],
        "first": "acc-1",
    }
    [record] = records
    assert isinstance(record, CallRecord)
    assert (record.operation, record.backend, record.method) == ("check_balance", "bank", "GET")
    assert record.path == "/customers/u1/accounts"
    assert record.params == {"customer": "u1", "pin": "***", "card_number": "***"}
    assert (record.conversation_id, record.user_id) == ("conv-1", "u1")
    assert (record.outcome, record.status_code, record.attempts) == ("ok", 200, 1)
    assert record.latency_ms > 0
    # the secret nowhere in the record (its latency is a float that may hold "1234")
    assert "1234" not in repr(dataclasses.replace(record, latency_ms=0.0))
    assert "4111" not in repr(record)


async def test_not_found(integrations: Integrations) -> None:
    result = await integrations.execute(
        "check_balance", {"customer": "u2", "pin": "1"}, conversation_id=None, user_id="u2"
    )
    assert (result.outcome, result.error, result.data) == ("not_found", "no such customer", None)


async def test_money_transfer_needs_an_idempotency_key(integrations: Integrations) -> None:
    with pytest.raises(IntegrationError, match="idempotency_key"):
        await integrations.execute(
            "transfer",
            {"amount": Money(Decimal("50"), "EUR"), "to": "acc-2"},
            conversation_id="c",
            user_id="u1",
        )


async def test_money_transfer_with_key(
    integrations: Integrations, fake: Any, key: str, records: RecordingHook
) -> None:
    result = await integrations.execute(
        "transfer",
        {"amount": Money(Decimal("50"), "EUR"), "to": "acc-2"},
        conversation_id="c",
        user_id="u1",
        idempotency_key=key,
    )
    assert result.outcome == "ok"
    assert result.data == {"id": "t-1", "status": "done"}
    assert result.body["transfer"]["amount"] == "50.00"
    assert fake.counts["transfers:" + key] == 1
    assert records[0].idempotency_key == key


async def test_rejected_uses_the_operations_error_reason(integrations: Integrations) -> None:
    result = await integrations.execute(
        "transfer",
        {"amount": Money(Decimal("0"), "EUR"), "to": "acc-2"},
        conversation_id="c",
        user_id="u1",
        idempotency_key="k-zero",
    )
    assert (result.outcome, result.status_code) == ("rejected", 422)
    assert result.error == "amount must be positive"


async def test_rejected_falls_back_to_detail(integrations: Integrations) -> None:
    result = await integrations.execute(
        "plain_post", {"code": "409"}, conversation_id=None, user_id=None
    )
    assert (result.outcome, result.error) == ("rejected", "status 409")


async def test_unsafe_value_is_denied_and_recorded_without_sending(
    integrations: Integrations, records: RecordingHook
) -> None:
    result = await integrations.execute(
        "check_balance",
        {"customer": "u1\r\n", "pin": "9999"},
        conversation_id="c",
        user_id="u1",
    )
    assert result.outcome == "denied"
    assert "customer" in (result.error or "")
    [record] = records
    assert (record.outcome, record.status_code, record.attempts) == ("denied", None, 0)
    assert record.params["pin"] == "***"


async def test_get_is_retried_by_default(
    integrations: Integrations, fake: Any, key: str, records: RecordingHook
) -> None:
    result = await integrations.execute(
        "flaky_get", {"key": key}, conversation_id=None, user_id=None
    )
    assert (result.outcome, result.attempts) == ("ok", 2)
    assert records[0].attempts == 2


async def test_unknown_operation_is_a_programming_error(integrations: Integrations) -> None:
    with pytest.raises(IntegrationError, match="unknown operation"):
        await integrations.execute("nope", {}, conversation_id=None, user_id=None)


async def test_user_middleware_runs_once_per_call_around_retries(
    config: BotConfig, fake: Any, key: str
) -> None:
    seen: list[str] = []

    async def tag(call: Call, call_next: Next) -> Result:
        seen.append(call.operation)
        call = dataclasses.replace(call, headers=(*call.headers, ("X-Tag", "t")))
        return await call_next(call)

    async with Integrations.from_config(config, middleware=[tag]) as ints:
        result = await ints.execute("flaky_get", {"key": key}, conversation_id=None, user_id=None)
    assert (result.outcome, result.attempts) == ("ok", 2)
    assert seen == ["flaky_get"]
    assert [h.get("x-tag") for h in fake.seen[key]] == ["t", "t"]


async def test_a_broken_middleware_becomes_outcome_error(
    config: BotConfig, records: RecordingHook
) -> None:
    async def broken(call: Call, call_next: Next) -> Result:
        raise RuntimeError("bug")

    async with Integrations.from_config(config, middleware=[broken], hooks=[records]) as ints:
        result = await ints.execute(
            "check_balance", {"customer": "u1", "pin": "1"}, conversation_id=None, user_id=None
        )
    assert result.outcome == "error"
    assert records[0].outcome == "error"


async def test_a_middleware_may_answer_without_calling(config: BotConfig) -> None:
    async def deny_money(call: Call, call_next: Next) -> Result:
        if call.moves_money:
            return Result(call=call, outcome="denied", error="transfers are paused")
        return await call_next(call)

    async with Integrations.from_config(config, middleware=[deny_money]) as ints:
        result = await ints.execute(
            "transfer",
            {"amount": Money(Decimal("5"), "EUR"), "to": "acc-2"},
            conversation_id=None,
            user_id=None,
            idempotency_key="k",
        )
    assert (result.outcome, result.error) == ("denied", "transfers are paused")


async def test_async_hooks_and_failing_hooks(config: BotConfig) -> None:
    got: list[str] = []

    async def async_hook(record: CallRecord) -> None:
        got.append(record.outcome)

    def failing_hook(record: CallRecord) -> None:
        raise ValueError("hook bug")

    async with Integrations.from_config(config, hooks=[failing_hook, async_hook]) as ints:
        result = await ints.execute(
            "check_balance", {"customer": "u1", "pin": "1"}, conversation_id=None, user_id=None
        )
    assert result.ok
    assert got == ["ok"]


async def test_check_ready(base_url: str, refused_url: str) -> None:
    config = BotConfig.model_validate(
        {"backends": {"up": {"base_url": base_url}, "down": {"base_url": refused_url}}}
    )
    async with Integrations.from_config(config) as ints:
        assert await ints.check_ready() == {"up": True, "down": False}


def test_bad_templates_and_mappings_fail_at_load(base_url: str, make_bot: Any) -> None:
    bad_template = make_bot(base_url, {"x": {"path": "/x", "reply": {"ok": "{{ oops"}}})
    with pytest.raises(ConfigError, match=r"operations\.x\.reply\.ok"):
        Integrations.from_config(bad_template)
    bad_mapping = make_bot(base_url, {"x": {"path": "/x", "response": {"a": "[?"}}})
    with pytest.raises(ConfigError, match=r"operations\.x\.response\.a"):
        Integrations.from_config(bad_mapping)
    bad_reason = make_bot(base_url, {"x": {"path": "/x", "error_reason": "a[?"}})
    with pytest.raises(ConfigError, match=r"operations\.x\.error_reason"):
        Integrations.from_config(bad_reason)


async def test_repr_shows_no_secrets(base_url: str, make_bot: Any) -> None:
    config = make_bot(
        base_url, {"x": {"path": "/x"}}, auth={"type": "bearer", "token": "tok-very-secret"}
    )
    async with Integrations.from_config(config) as ints:
        assert "tok-very-secret" not in repr(ints)
        assert "tok-very-secret" not in repr(ints.clients["bank"])
