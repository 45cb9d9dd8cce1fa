"""Money moves exactly once, and the user is told honestly what is known.

The sample bank sits behind a fault-injecting proxy that loses the answers to
transfers: the bank moves the money, the bot never hears back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bankclient import Bank

from intentbridge.bot import Bot, BotSettings
from intentbridge.project import BotProject, load_project
from intentbridge.stores import AuditEntry, PendingOperation, open_store
from intentbridge.testing import FaultProxy, Faults
from intentbridge.testing.bot import BotClient, serve_bot
from intentbridge.types import Message

LOSE_TRANSFERS = Faults(lose_response=1.0, methods=("POST",), path_prefix="/customers/", seed=7)


def lose_the_answer_to_a_transfer(bot: BotClient, proxy: FaultProxy, euros: str) -> None:
    """A confirmed transfer whose answer the proxy loses: the bot says it cannot confirm."""
    bot.say(f"move {euros} euros from checking to savings")
    proxy.set_faults(LOSE_TRANSFERS)
    assert "couldn't confirm" in bot.say("yes")
    proxy.set_faults(Faults())


@pytest.fixture
def proxy(bank: Bank) -> Iterator[FaultProxy]:
    with FaultProxy(bank.url, Faults()).run_in_thread() as p:
        yield p


@pytest.fixture
def proxied(project_dir: Path, proxy: FaultProxy) -> BotProject:
    return load_project(project_dir, env={"COREBANK_URL": proxy.url})


def test_lost_response_is_settled_to_exactly_one_transfer(
    proxied: BotProject, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    with serve_bot(proxied, store_url) as bot:
        bot.say("move 50 euros from checking to savings")
        proxy.set_faults(LOSE_TRANSFERS)
        reply = bot.say("yes")
        assert "couldn't confirm" in reply and "Done" not in reply
        assert proxy.stats.lost_responses >= 1
        # the bank did move it (maybe asked several times, with one key): once
        assert len(bank.transfers("alice")) == 1

        proxy.set_faults(Faults())
        settled = asyncio.run(_settle(proxied, store_url))
        assert settled == 1
        update = bot.say("what's my balance?")
    assert "Update on your earlier request: Done: 50.00 EUR moved" in update
    assert "1,200.50" in update
    assert len(bank.transfers("alice")) == 1


def test_a_yes_after_a_lost_transfer_was_settled_is_told_it_was_done(
    proxied: BotProject, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    """The news and the answer agree: done, once; a "yes" redoes nothing."""
    with serve_bot(proxied, store_url) as bot:
        lose_the_answer_to_a_transfer(bot, proxy, "50")
        assert asyncio.run(_settle(proxied, store_url)) == 1
        reply = bot.say("yes")  # the news comes with this answer
        again = bot.say("yes")
    assert "Update on your earlier request: Done: 50.00 EUR moved" in reply
    for answer in (reply, again):
        assert "nothing waiting" not in answer
        assert "already been done" in answer and "haven't done it again" in answer
    assert "Done: 50.00 EUR moved from checking to savings (reference" in again
    assert len(bank.transfers("alice")) == 1
    assert bank.balances("alice")["checking"] == "1200.50"


def test_a_yes_after_the_settled_news_was_read_is_told_it_was_done(
    proxied: BotProject, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    """The news delivered with an earlier answer; a new request since makes "yes" its own."""
    with serve_bot(proxied, store_url) as bot:
        lose_the_answer_to_a_transfer(bot, proxy, "30")
        assert asyncio.run(_settle(proxied, store_url)) == 1
        assert "Update on your earlier request: Done: 30.00 EUR moved" in bot.say("hi")
        reply = bot.say("yes")
        bot.say("what's my balance?")
        after_new_request = bot.say("yes")
    assert "already been done" in reply and "30.00 EUR moved" in reply
    assert "nothing waiting" in after_new_request
    assert len(bank.transfers("alice")) == 1


def test_lost_answer_without_status_operation_is_settled_by_resending_the_key(
    project_dir: Path, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    text = (project_dir / "bot.yaml").read_text()
    without = text.replace('    resolve: {operation: find_transfer, found: "transfers[0]"}\n', "")
    project = _variant(project_dir, without, proxy.url)
    assert project.config.operations["transfer_money"].resolve is None
    with serve_bot(project, store_url) as bot:
        lose_the_answer_to_a_transfer(bot, proxy, "25")
        assert asyncio.run(_settle(project, store_url)) == 1
        assert "Done: 25.00 EUR moved" in bot.say("hi")
    assert len(bank.transfers("alice")) == 1


def test_restart_settles_a_pending_transfer_left_by_a_crash(
    project: BotProject, bank: Bank, store_url: str
) -> None:
    """The process died after storing the key and sending the request."""
    key = f"ib-{uuid.uuid4().hex}"
    body = {
        "from_account": "acc-alice-chk",
        "to_account": "acc-alice-sav",
        "amount": "80.00",
        "currency": "EUR",
    }
    assert (
        bank.client.post(
            "/customers/alice/transfers", json=body, headers={"Idempotency-Key": key}
        ).status_code
        == 201
    )

    async def leave_pending() -> None:
        store = open_store(store_url)
        await store.open()
        await store.put_pending(
            PendingOperation(
                idempotency_key=key,
                conversation_id="rest:alice",
                operation="transfer_money",
                params={
                    "call": {
                        "customer": "alice",
                        "from_account": "acc-alice-chk",
                        "to_account": "acc-alice-sav",
                        "amount": {"$money": "80.00", "currency": "EUR"},
                    },
                    "shown": {
                        "from_account": "checking",
                        "to_account": "savings",
                        "amount": {"$money": "80.00", "currency": "EUR"},
                    },
                    "user_id": "alice",
                },
                created_at=time.time(),
            )
        )
        await store.close()

    asyncio.run(leave_pending())
    with serve_bot(project, store_url) as bot:  # start-up settles what was left
        deadline = time.monotonic() + 10
        messages: list[dict[str, object]] = []
        while not messages and time.monotonic() < deadline:
            messages = bot.http.get("/conversations/alice/outbox").json()
            time.sleep(0.05)
    assert messages and "80.00 EUR moved" in str(messages[0]["text"])
    assert len(bank.transfers("alice")) == 1
    assert bank.balances("alice")["checking"] == "1170.50"


def test_a_slow_backend_gets_a_timely_answer(project_dir: Path, bank: Bank, store_url: str) -> None:
    """The turn deadline bounds everything: a 3 s backend cannot hold a 1 s turn."""
    with FaultProxy(
        bank.url, Faults(latency=(3.0, 3.0), path_prefix="/customers/")
    ).run_in_thread() as slow:
        text = (project_dir / "bot.yaml").read_text().replace("deadline: 5", "deadline: 1")
        project = _variant(project_dir, text, slow.url)
        with serve_bot(project, store_url) as bot:
            started = time.monotonic()
            reply = bot.say("what's my balance?")
            took = time.monotonic() - started
    assert took < 2.0
    assert "too long" in reply or "unavailable" in reply


async def _settle(project: BotProject, store_url: str) -> int:
    bot = await Bot.from_project(project, BotSettings(store_url=store_url))
    try:
        return await bot.pending.run_once(include_fresh=True)
    finally:
        await bot.aclose()


def _variant(project_dir: Path, text: str, url: str) -> BotProject:
    folder = project_dir.parent / f"variant-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "bot.yaml").write_text(text)
    (folder / "data").symlink_to(project_dir / "data")
    (folder / ".intentbridge").symlink_to(project_dir / ".intentbridge")
    return load_project(folder, env={"COREBANK_URL": url})


def test_message_handling_never_raises_for_backend_faults(
    proxied: BotProject, proxy: FaultProxy, store_url: str
) -> None:
    async def run() -> list[str]:
        bot = await Bot.from_project(proxied, BotSettings(store_url=store_url))
        try:
            proxy.set_faults(Faults(malformed=1.0, path_prefix="/customers/", seed=1))
            replies = await bot.handle(Message(text="what's my balance?", sender="alice"))
            proxy.set_faults(Faults(reset=1.0, path_prefix="/customers/", seed=1))
            replies += await bot.handle(Message(text="what's my balance?", sender="alice"))
            return [r.text for r in replies]
        finally:
            await bot.aclose()

    texts = asyncio.run(run())
    assert len(texts) == 2 and all(texts)
    assert not any("Traceback" in t for t in texts)


def test_a_failing_status_lookup_leaves_the_transfer_unsettled(
    project_dir: Path, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    """A 404 from the status operation says nothing about the transfer itself."""
    text = (project_dir / "bot.yaml").read_text()
    broken = text.replace(
        "    path: /customers/{customer}/transfers\n    query:",
        "    path: /customers/{customer}/no-such-list\n    query:",
        1,
    )
    assert broken != text
    project = _variant(project_dir, broken, proxy.url)
    with serve_bot(project, store_url) as bot:
        lose_the_answer_to_a_transfer(bot, proxy, "15")
        assert asyncio.run(_settle(project, store_url)) == 0
        assert "Update on your earlier request" not in bot.say("hi")
    assert len(bank.transfers("alice")) == 1  # it did happen; nobody claimed otherwise


def test_two_workers_given_the_same_yes_move_the_money_once(
    proxied: BotProject, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    """Two bot processes share one store; a double-tapped "yes" reaches both at once.

    Each worker loads the conversation while it still awaits confirmation, so each
    executes the transfer; the key made with the question is the same in both, and the
    bank acts once.
    """
    from concurrent.futures import ThreadPoolExecutor

    with serve_bot(proxied, store_url) as first, serve_bot(proxied, store_url) as second:
        question = first.say("move 50 euros from checking to savings")
        assert "?" in question
        # slow transfers down so that both "yes" are in flight together
        proxy.set_faults(Faults(latency=(0.3, 0.3), methods=("POST",), seed=1))
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(lambda bot: bot.say("yes"), (first, second)))
        proxy.set_faults(Faults())
    assert any("Done" in r for r in replies), replies
    keys = asyncio.run(_transfer_keys(store_url))
    assert len(keys) == 2 and len(set(keys)) == 1  # both workers sent it, with one key …
    assert len(bank.transfers("alice")) == 1  # … and the money moved once
    assert bank.balances("alice")["checking"] == "1200.50"


async def _transfer_keys(store_url: str) -> list[str | None]:
    entries = await _audit(store_url)
    return [e.idempotency_key for e in entries if e.operation == "transfer_money"]


def test_two_workers_settling_one_lost_transfer_tell_the_user_once(
    proxied: BotProject, proxy: FaultProxy, bank: Bank, store_url: str
) -> None:
    with serve_bot(proxied, store_url) as bot:
        lose_the_answer_to_a_transfer(bot, proxy, "50")
        settled = asyncio.run(_settle_in_two_workers(proxied, store_url))
        update = bot.say("what's my balance?")
    assert 1 in settled  # both may settle it; only one may tell
    assert update.count("Update on your earlier request") == 1
    assert len(bank.transfers("alice")) == 1
    entries = asyncio.run(_audit(store_url))
    assert [e.path for e in entries].count("(settled)") == 1


async def _settle_in_two_workers(project: BotProject, store_url: str) -> list[int]:
    bots = [await Bot.from_project(project, BotSettings(store_url=store_url)) for _ in range(2)]
    try:
        return list(await asyncio.gather(*(b.pending.run_once(include_fresh=True) for b in bots)))
    finally:
        for b in bots:
            await b.aclose()


async def _audit(store_url: str) -> list[AuditEntry]:
    store = open_store(store_url)
    await store.open()
    try:
        return await store.audit()
    finally:
        await store.close()
