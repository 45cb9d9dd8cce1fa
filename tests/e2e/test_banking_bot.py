"""The banking bot end to end: REST channel → NLU → dialogue → OAuth2 → sample bank."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from bankclient import Bank
from interrupted import store_interrupted_transfer

from intentbridge.project import BotProject
from intentbridge.stores import open_store
from intentbridge.testing.bot import BotClient, serve_bot


def test_balance_of_all_accounts(bot: BotClient) -> None:
    text = bot.say("what's my balance?")
    assert "1,250.50 EUR" in text
    assert "5,000.00 EUR" in text


def test_balance_of_one_account_and_carry_over(bot: BotClient) -> None:
    text = bot.say("how much is in my checking account?")
    assert "1,250.50" in text and "5,000.00" not in text
    follow_up = bot.say("and savings?")
    assert "5,000.00" in follow_up and "1,250.50" not in follow_up


def test_transfer_with_confirmation(bot: BotClient, bank: Bank) -> None:
    replies = bot.send("move 50 euros from checking to savings")
    assert len(replies) == 1
    assert "50.00 EUR" in replies[0]["text"] and "?" in replies[0]["text"]
    assert [b["title"] for b in replies[0]["buttons"]] == ["Yes, move it", "No"]
    assert bank.transfers("alice") == []  # nothing moves before the yes

    done = bot.say("yes")
    assert "Done" in done
    assert bank.balances("alice") == {"checking": "1200.50", "savings": "5050.00"}
    [transfer] = bank.transfers("alice")
    assert transfer["amount"] == "50.00"
    assert transfer["idempotency_key"]


def test_confirm_button_payload_confirms(bot: BotClient, bank: Bank) -> None:
    [question] = bot.send("transfer 20 euros from savings to checking")
    yes = question["buttons"][0]["payload"]
    assert "Done" in bot.say(yes)
    assert bank.balances("alice")["checking"] == "1270.50"


def test_missing_amount_is_asked_for(bot: BotClient, bank: Bank) -> None:
    assert "How much" in bot.say("I want to move money from checking to savings")
    question = bot.say("30 euros")
    assert "30.00 EUR" in question and "checking" in question and "savings" in question
    assert "Done" in bot.say("yes")
    assert [t["amount"] for t in bank.transfers("alice")] == ["30.00"]


def test_missing_accounts_are_asked_for_in_turn(bot: BotClient) -> None:
    assert "How much" in bot.say("transfer money")
    assert "From which account" in bot.say("25 euros")
    assert "To which account" in bot.say("checking")
    assert "25.00 EUR from your checking account to your savings" in bot.say("savings")


def test_declined_confirmation_moves_nothing(bot: BotClient, bank: Bank) -> None:
    assert "?" in bot.say("move 100 euros from checking to savings")
    assert "won't" in bot.say("no")
    assert bank.transfers("alice") == []
    assert bank.balances("alice") == {"checking": "1250.50", "savings": "5000.00"}
    # and a later "yes" does not revive it
    bot.say("yes")
    assert bank.transfers("alice") == []


def test_correction_needs_a_new_confirmation(bot: BotClient, bank: Bank) -> None:
    assert "50.00 EUR" in bot.say("move 50 euros from checking to savings")
    assert "30.00 EUR" in bot.say("make it 30")
    assert "Done" in bot.say("yes")
    assert [t["amount"] for t in bank.transfers("alice")] == ["30.00"]


def test_stale_confirm_button_does_not_confirm_changed_amount(bot: BotClient, bank: Bank) -> None:
    [first] = bot.send("move 50 euros from checking to savings")
    stale_yes = first["buttons"][0]["payload"]
    assert "30.00 EUR" in bot.say("make it 30")
    again = bot.say(stale_yes)  # the button shown for 50 must not move 30 unasked
    assert "30.00 EUR" in again and "?" in again
    assert bank.transfers("alice") == []


def test_cancel_drops_the_request(bot: BotClient, bank: Bank) -> None:
    assert "How much" in bot.say("transfer money from checking to savings")
    assert "cancel" in bot.say("never mind").lower()
    assert "nothing to cancel" in bot.say("never mind").lower()
    assert bank.transfers("alice") == []


def test_invalid_amount_is_asked_again_then_given_up(bot: BotClient, bank: Bank) -> None:
    assert "How much" in bot.say("transfer money from checking to savings")
    first = bot.say("0 euros")
    assert "more than zero" in first and "How much" in first  # explained and asked again
    assert "largest amount is 10000" in bot.say("20000 euros")
    assert "stopped" in bot.say("0")
    assert bank.transfers("alice") == []


def test_overdraft_is_refused_with_the_banks_reason(bot: BotClient, bank: Bank) -> None:
    bot.say("move 9000 euros from checking to savings")
    reply = bot.say("yes")
    assert "Insufficient funds" in reply or "insufficient" in reply.lower()
    assert bank.balances("alice")["checking"] == "1250.50"


def test_another_customers_account_is_refused(bot: BotClient, bank: Bank) -> None:
    bot.say("move 10 euros to savings")
    reply = bot.say("acc-bob-chk")  # bob's account id, typed by alice
    assert "checking" in reply and "savings" in reply  # the options alice really has
    assert bank.transfers("alice") == [] and bank.transfers("bob") == []


def test_pay_a_payee(bot: BotClient, bank: Bank) -> None:
    assert "How much" in bot.say("pay Carol")
    assert "Carol" in bot.say("15 euros")
    assert "paid to Carol" in bot.say("yes")
    [transfer] = bank.transfers("alice")
    assert transfer["payee"] == "pay-alice-carol"
    assert bank.balances("alice")["checking"] == "1235.50"


def test_recent_transactions(bot: BotClient) -> None:
    text = bot.say("show my recent transactions")
    assert "Recent transactions on your checking account" in text
    assert text.count("\n- ") >= 3


def test_unknown_message_gets_the_fallback(bot: BotClient) -> None:
    assert "didn't get that" in bot.say("what's the weather like on mars tonight")


def test_greet_help_goodbye(bot: BotClient) -> None:
    assert "banking assistant" in bot.say("hello")
    assert "balance" in bot.say("what can you do?")
    assert "Goodbye" in bot.say("bye")


def test_senders_are_separate_customers(bot: BotClient) -> None:
    assert "310.00" in bot.say("what's my balance?", sender="bob")
    assert "1,250.50" in bot.say("what's my balance?", sender="alice")


def test_stream_gives_one_json_object_a_line(bot: BotClient) -> None:
    response = bot.http.post(
        "/webhooks/rest/webhook?stream=true", json={"sender": "alice", "message": "hi"}
    )
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines and lines[0]["recipient_id"] == "alice" and lines[0]["text"]


def test_bad_requests_are_rejected_cleanly(bot: BotClient) -> None:
    assert bot.http.post("/webhooks/rest/webhook", json={"message": "hi"}).status_code == 422
    too_long = {"sender": "alice", "message": "x" * 5000}
    assert bot.http.post("/webhooks/rest/webhook", json=too_long).status_code == 422
    bad_json = bot.http.post("/webhooks/rest/webhook", content=b"{nope")
    assert bad_json.status_code == 422
    assert "must be JSON" in bad_json.json()["detail"][0]["msg"]
    no_sender = bot.http.post("/webhooks/rest/webhook", json={"message": "hi"}).json()
    assert no_sender["detail"][0]["loc"] == ["body", "sender"]
    not_an_object = bot.http.post("/webhooks/rest/webhook", json=["alice", "hi"])
    assert not_an_object.status_code == 422


def test_an_oversized_body_is_refused_before_it_is_read(bot: BotClient) -> None:
    huge = b'{"sender": "alice", "message": "' + b"x" * 2_000_000 + b'"}'
    assert bot.http.post("/webhooks/rest/webhook", content=huge).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"sender": "alice", "message": "'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"}'

    assert bot.http.post("/webhooks/rest/webhook", content=chunks()).status_code == 413


def test_a_json_body_without_json_content_type_is_understood(bot: BotClient) -> None:
    """``curl -d '{...}'`` sends form content type; Rasa accepts it, so do we."""
    response = bot.http.post(
        "/webhooks/rest/webhook",
        content=b'{"sender": "alice", "message": "hi"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json()[0]["recipient_id"] == "alice"


def test_health_and_ready(bot: BotClient) -> None:
    assert bot.http.get("/health").json() == {"status": "ok"}
    ready = bot.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": True, "backend:corebank": True}


async def test_bank_down_gives_friendly_reply_and_audit_record(
    project_dir: object, store_url: str
) -> None:
    from intentbridge.project import load_project

    down = load_project(str(project_dir), env={"COREBANK_URL": "http://127.0.0.1:9"})
    with serve_bot(down, store_url) as bot:
        reply = bot.say("what's my balance?")
        assert "isn't reachable" in reply
        assert bot.http.get("/ready").status_code == 503
    store = open_store(store_url)
    await store.open()
    records = await store.audit(conversation_id="rest:alice")
    await store.close()
    assert records and records[0].outcome in {"unavailable", "auth_failed"}
    assert "demo-secret" not in json.dumps([r.error for r in records])


def test_duplicate_message_id_never_executes_twice(bot: BotClient, bank: Bank) -> None:
    bot.send("move 40 euros from checking to savings", message_id="m1")
    first = bot.send("yes", message_id="m2")
    again = bot.send("yes", message_id="m2")  # a client retry of the same request
    assert "Done" in first[0]["text"]
    assert again == first  # the same answer, and no second transfer
    assert len(bank.transfers("alice")) == 1


def test_yes_sent_twice_moves_money_once(bot: BotClient, bank: Bank) -> None:
    bot.say("move 40 euros from checking to savings")
    assert "Done" in bot.say("yes")
    assert "already been done" in bot.say("yes")  # told so, and nothing runs again
    assert len(bank.transfers("alice")) == 1


def test_replaying_the_key_of_a_transfer_moves_nothing_more(bot: BotClient, bank: Bank) -> None:
    bot.say("move 40 euros from checking to savings")
    bot.say("yes")
    [transfer] = bank.transfers("alice")
    body = {
        "from_account": transfer["from_account"],
        "to_account": transfer["to_account"],
        "amount": transfer["amount"],
        "currency": transfer["currency"],
    }
    replay = bank.client.post(
        "/customers/alice/transfers",
        json=body,
        headers={"Idempotency-Key": transfer["idempotency_key"]},
    )
    assert replay.json()["id"] == transfer["id"]
    assert len(bank.transfers("alice")) == 1
    assert bank.balances("alice")["checking"] == "1210.50"


def test_conversation_survives_a_bot_restart(
    project: BotProject, store_url: str, bank: Bank
) -> None:
    with serve_bot(project, store_url) as bot:
        assert "How much" in bot.say("transfer money from checking to savings")
    with serve_bot(project, store_url) as bot:  # a new process, the same store
        assert "70.00 EUR" in bot.say("70 euros")
        assert "Done" in bot.say("yes")
    assert [t["amount"] for t in bank.transfers("alice")] == ["70.00"]


async def test_crash_after_sending_is_finished_with_the_same_key(
    project: BotProject, store_url: str, bank: Bank
) -> None:
    """The bot stopped after the bank moved the money but before it recorded the reply."""
    key = f"ib-{uuid.uuid4().hex}"
    sent = bank.client.post(
        "/customers/alice/transfers",
        json={
            "from_account": "acc-alice-chk",
            "to_account": "acc-alice-sav",
            "amount": "12.00",
            "currency": "EUR",
        },
        headers={"Idempotency-Key": key},
    )
    assert sent.status_code == 201
    await store_interrupted_transfer(store_url, key)
    with serve_bot(project, store_url) as bot:
        reply = bot.say("hello")
    assert "12.00 EUR moved" in reply
    assert len(bank.transfers("alice")) == 1
    assert bank.balances("alice")["checking"] == "1238.50"


def test_channel_token_is_enforced_when_configured(
    project: BotProject, store_url: str, monkeypatch: object
) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setenv("INTENTBRIDGE_REST_TOKEN", "tok-123")
    try:
        with serve_bot(project, store_url) as bot:
            body = {"sender": "alice", "message": "hi"}
            assert bot.http.post("/webhooks/rest/webhook", json=body).status_code == 401
            ok = bot.http.post("/webhooks/rest/webhook?token=tok-123", json=body)
            assert ok.status_code == 200
    finally:
        mp.undo()
    assert httpx  # keep import used for type clarity


def test_a_currency_the_accounts_do_not_hold_is_refused(bot: BotClient, bank: Bank) -> None:
    reply = bot.say("move 20 dollars from checking to savings")
    assert "EUR" in reply and "?" not in reply.splitlines()[0]
    assert bank.transfers("alice") == []


def test_a_sender_flooding_the_bot_is_slowed_down(
    project_dir: object, bank: Bank, store_url: str
) -> None:
    from intentbridge.project import load_project

    text = (Path(str(project_dir)) / "bot.yaml").read_text()
    assert "incoming_per_sender: 30/minute" in text
    project = load_project(str(project_dir), env={"COREBANK_URL": bank.url})
    with serve_bot(project, store_url) as bot:
        replies = [bot.say("hi") for _ in range(31)]
        assert "banking assistant" in replies[29]
        assert "faster than I can keep up" in replies[30]
        assert "banking assistant" in bot.say("hi", sender="bob")  # others are not slowed


def test_a_new_request_while_another_is_being_filled_starts_over(
    bot: BotClient, bank: Bank
) -> None:
    assert "How much" in bot.say("move money from checking to savings")
    reply = bot.say("pay Carol 10 euros")  # a payee: not something a transfer takes
    assert "Pay 10.00 EUR to Carol" in reply
    assert "Move" not in reply


def test_an_answer_that_fits_the_request_is_not_a_new_request(bot: BotClient) -> None:
    assert "How much" in bot.say("pay Carol")
    assert "Pay 12.00 EUR to Carol from your savings" in bot.say("12 euros from savings")


def test_an_amount_with_too_many_decimals_is_shown_as_given(bot: BotClient) -> None:
    reply = bot.say("move 0.001 euros from checking to savings")
    assert "0.001 EUR" in reply and "two decimal places" in reply


def test_a_refused_value_does_not_lose_the_others_said_with_it(bot: BotClient) -> None:
    reply = bot.say("pay Mallory 10 euros")
    assert "Mallory isn't a valid payee" in reply and "Carol" in reply
    assert "Pay 10.00 EUR to Carol" in bot.say("Carol")  # the amount was kept
