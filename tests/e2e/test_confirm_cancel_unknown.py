"""Replies around a money-moving request, over real HTTP to the sample bank.

A "yes" with nothing to confirm says so (and that a transfer it may repeat was
already done: it is never run twice); "no" to a question of a pending request cancels
it; a sender the bank does not know is told there is no account, without internal codes.
"""

from __future__ import annotations

import pytest
from bankclient import Bank
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interrupted import store_interrupted_transfer

from intentbridge.project import BotProject
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
