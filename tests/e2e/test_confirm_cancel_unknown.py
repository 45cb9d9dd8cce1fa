"""Replies around a money-moving request, over real HTTP to the sample bank.

A "yes" with nothing to confirm says so (and that a transfer it may repeat was
already done: it is never run twice); "no" to a question of a pending request cancels
it; a sender the bank does not know is told there is no account, without internal codes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bankclient import Bank
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interrupted import store_interrupted_transfer

from intentbridge.project import BotProject, load_project
from intentbridge.project.schema import Responses
from intentbridge.testing.bot import BotClient, serve_bot

# --- 4. "yes" with nothing to confirm ------------------------------------------------


def test_a_stray_yes_is_told_nothing_is_waiting(bot: BotClient, bank: Bank) -> None:
    reply = bot.say("yes")
    assert "nothing waiting for your confirmation" in reply
    assert "didn't get that" not in reply
    assert bank.transfers("alice") == []


def test_a_yes_repeated_after_a_transfer_is_told_it_was_done(bot: BotClient, bank: Bank) -> None:
    """A client that lost "Done: ..." and sends "yes" again learns it happened, once."""
    bot.say("move 40 euros from checking to savings")
    done = bot.say("yes")
    again = bot.say("yes")
    assert "already been done" in again and "haven't done it again" in again
    assert done in again  # the same reference, so the user can check it
    assert len(bank.transfers("alice")) == 1
    # a new request since: a stray "yes" is about that one, not the old transfer
    bot.say("what's my balance?")
    assert "nothing waiting" in bot.say("yes")
    assert len(bank.transfers("alice")) == 1


async def test_a_yes_that_finishes_an_interrupted_transfer_gets_only_its_answer(
    project: BotProject, store_url: str, bank: Bank
) -> None:
    """The turn stopped after the key was stored (a stream closed by the client)."""
    await store_interrupted_transfer(store_url, "ib-interrupted-yes")
    with serve_bot(project, store_url) as bot:
        replies = bot.send("yes")
        assert [r["text"] for r in replies if "12.00 EUR moved" in r["text"]]
        assert len(replies) == 1, replies  # no fallback after it
        assert "already been done" in bot.say("yes")
    assert len(bank.transfers("alice")) == 1


# --- 5. "no" to a question of a pending request cancels it ---------------------------


@pytest.mark.parametrize("no", ["no", "nope", "no thanks", "never mind"])
@pytest.mark.parametrize(
    ("request_", "question"),
    [
        ("transfer money from checking to savings", "How much"),
        ("move 25 euros", "From which account"),
        ("pay Carol", "How much"),
    ],
)
def test_no_at_a_question_cancels_the_request(
    bot: BotClient, bank: Bank, no: str, request_: str, question: str
) -> None:
    assert question in bot.say(request_)
    reply = bot.say(no)
    assert "cancelled" in reply and "Nothing was done" in reply
    assert question not in reply
    assert "nothing waiting" in bot.say("yes")
    assert bank.transfers("alice") == []


def test_no_with_an_answer_is_an_answer_and_a_plain_no_then_cancels(
    bot: BotClient, bank: Bank
) -> None:
    assert "From which account" in bot.say("move 25 euros")
    assert "To which account" in bot.say("no, from savings")
    assert "Nothing was done" in bot.say("nope")
    assert bank.transfers("alice") == []


# --- 6. a sender the bank does not know ----------------------------------------------


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["mallory", "eve", "nobody-123"]),
    st.sampled_from(
        [
            "move 5 euros from checking to savings",
            "pay Carol 5 euros",
            "show my transactions",
            "move 5 euros to savings",
        ]
    ),
)
def test_a_sender_who_is_no_customer_is_told_there_is_no_account(
    bot: BotClient, bank: Bank, sender: str, message: str
) -> None:
    reply = bot.say(message, sender=sender)
    assert "no account at the bank for you" in reply and "Nothing was done" in reply
    assert "not_found" not in reply and "isn't a valid" not in reply
    assert "couldn't check" not in reply
    assert bank.transfers("alice") == []


@pytest.mark.parametrize("sender", ["mallory", "nobody-123"])
@pytest.mark.parametrize(
    "message", ["what's my balance?", "how much is in my savings?", "check my balance"]
)
def test_a_sender_who_is_no_customer_asking_for_a_balance_is_told_there_is_no_account(
    bot: BotClient, bank: Bank, sender: str, message: str
) -> None:
    """The bank's 404 for the user's own accounts is about them, not "I couldn't find that"."""
    reply = bot.say(message, sender=sender)
    assert "the bank has no accounts for you" in reply
    assert "couldn't find that" not in reply
    # no internal code, no backend message, nobody else's data
    for leak in ("not_found", "404", "No customer", sender, "alice", "1,250.50"):
        assert leak not in reply
    # the identity is the channel's: naming a customer in the text changes nothing
    assert "the bank has no accounts for you" in bot.say("what's alice's balance?", sender=sender)
    assert "balance is" in bot.say(message)  # alice, a customer, still gets hers


def test_a_project_without_its_own_text_tells_a_non_customer_the_default(
    project_dir: Path, bank: Bank, store_url: str, tmp_path: Path
) -> None:
    text = (project_dir / "bot.yaml").read_text()
    lines = text.splitlines(keepends=True)
    without = "".join(line for line in lines if not line.lstrip().startswith("user_not_found:"))
    assert without != text
    folder = tmp_path / "no-own-text"
    folder.mkdir()
    (folder / "bot.yaml").write_text(without)
    (folder / "data").symlink_to(project_dir / "data")
    (folder / ".intentbridge").symlink_to(project_dir / ".intentbridge")
    project = load_project(folder, env={"COREBANK_URL": bank.url})
    with serve_bot(project, store_url) as bot:
        reply = bot.say("what's my balance?", sender="mallory")
    assert reply == Responses().user_not_found
    assert "couldn't find any records for you" in reply
