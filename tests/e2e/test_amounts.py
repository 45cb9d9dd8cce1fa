"""Which amount a transfer or payment takes, over real HTTP to the sample bank.

The confirmation must show the amount the user meant, or the bot must say why it has
none: a currency amount beats a bare number, dates and references are no amounts,
signs are kept (and refused), formulas and exponents are not read as their first
digit, "1.500" is asked about, and amounts are shown as plain decimals.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from bankclient import Bank
from corebank.app import create_app as create_bank
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentbridge.project import load_project
from intentbridge.testing import LoopbackServer
from intentbridge.testing.bot import BotClient, serve_bot

FAST = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
amounts = st.decimals(min_value="0.01", max_value="5000", places=2)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    with LoopbackServer(create_bank(tmp_path_factory.mktemp("bank") / "bank.sqlite3")) as url:
        b = Bank(url)
        yield b
        b.client.close()


@pytest.fixture(scope="module")
def bot(
    project_dir: Path, bank: Bank, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BotClient]:
    """One bot for the module; no confirmation here is ever answered, so no money moves."""
    project = load_project(project_dir, env={"COREBANK_URL": bank.url})
    store = f"sqlite:///{tmp_path_factory.mktemp('store') / 'bot.sqlite3'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTENTBRIDGE_RATE_LIMITS", "off")  # many examples, one after another
        with serve_bot(project, store) as client:
            yield client


def say(bot: BotClient, text: str) -> str:
    """Alice's reply to ``text`` as a new request: what was pending is cancelled first."""
    bot.say("cancel")
    return bot.say(text)


def shown(amount: Decimal) -> str:
    return f"{amount:,.2f} EUR"


# --- 1. which mention is the amount --------------------------------------------------


@FAST
@given(st.integers(1, 999), amounts)
def test_an_amount_with_a_currency_beats_a_bare_number(
    bot: BotClient, invoice: int, amount: Decimal
) -> None:
    reply = say(bot, f"pay Carol for invoice {invoice} the amount of {amount} euros")
    assert f"Pay {shown(amount)} to Carol" in reply


@pytest.mark.parametrize(
    "text",
    [
        "on the 3rd move 5 euros from checking to savings",
        "pay Carol for invoice 12 the amount of 5 euros",
        "pay Carol for invoice #12 5 euros",
    ],
)
def test_dates_ordinals_and_references_are_not_the_amount(bot: BotClient, text: str) -> None:
    assert "5.00 EUR" in say(bot, text).splitlines()[0]


def test_a_bare_reference_alone_is_no_amount(bot: BotClient) -> None:
    assert say(bot, "pay Carol for invoice 12") == "How much should I send?"


def test_two_different_amounts_are_asked_about_not_guessed(bot: BotClient) -> None:
    reply = say(bot, "move 5 euros and 10 euros from checking to savings")
    assert "which amount" in reply and "5.00 EUR" in reply and "10.00 EUR" in reply
    assert "Move" not in reply
    assert "Move 10.00 EUR" in bot.say("10 euros")


# --- 2. signs, formulas, exponents and "1.500" ---------------------------------------


@FAST
@given(amounts, st.sampled_from(["-{} euros", "€-{}", "-€{}", "minus {} euros", "EUR -{}"]))
def test_a_negative_amount_is_refused_not_turned_positive(
    bot: BotClient, amount: Decimal, form: str
) -> None:
    reply = say(bot, "move " + form.format(amount) + " from checking to savings")
    assert "more than zero" in reply
    assert "Move" not in reply


@FAST
@given(
    st.integers(1, 99),
    st.integers(1, 30),
    st.sampled_from(["{a}e-{b}", "{a}E-{b}", "{a}e+{b}", "{a}*{b}", "{{{{{a}*{b}}}}}"]),
    st.sampled_from(["move {} euros from checking to savings", "pay Carol {} euros"]),
)
def test_formulas_and_exponents_are_not_read_as_their_digits(
    bot: BotClient, a: int, b: int, notation: str, message: str
) -> None:
    written = notation.format(a=a, b=b)
    reply = say(bot, message.format(written))
    assert "plain digits" in reply and written in reply
    assert "Move" not in reply and "Pay" not in reply


def test_an_injection_attempt_does_not_become_the_amount(bot: BotClient) -> None:
    reply = say(bot, "pay Carol' OR '1'='1 5 euros")
    assert "5.00 EUR" in reply and "1.00 EUR" not in reply


@pytest.mark.parametrize(("written", "english"), [("1.500", "1.50"), ("2.250", "2.25")])
def test_a_dot_before_three_digits_is_asked_about(
    bot: BotClient, written: str, english: str
) -> None:
    """English decimal or continental thousands: for money the bot asks, never guesses."""
    reply = say(bot, f"move {written} euros from checking to savings")
    thousands = shown(Decimal(written.replace(".", "")))
    assert f"{english} EUR or {thousands}" in reply and "Move" not in reply
    assert f"Move {thousands}" in bot.say(written.replace(".", "") + " euros")
    # the notations that are not ambiguous are read as written, without a question
    for plain, amount in (("1.000,50", "1,000.50"), ("1,500", "1,500.00"), ("0.50", "0.50")):
        assert f"Move {amount} EUR" in say(bot, f"move {plain} euros from checking to savings")


# --- 3. amounts in replies are plain decimals ----------------------------------------


@FAST
@given(st.integers(3, 40))
def test_tiny_amounts_are_shown_as_plain_decimals(bot: BotClient, zeros: int) -> None:
    written = "0." + "0" * (zeros - 1) + "1"
    reply = say(bot, f"move {written} euros from checking to savings")
    assert f"{written} EUR isn't a valid amount" in reply
    assert "E-" not in reply


@FAST
@given(st.integers(10**28, 10**60))
def test_an_absurdly_large_amount_is_refused_not_a_crash(bot: BotClient, amount: int) -> None:
    """Cents of a 30-digit sum overflow the decimal context; the user gets the limit."""
    reply = say(bot, f"move {amount} euros from checking to savings")
    assert "largest amount is 10000" in reply
    assert "went wrong" not in reply


# --- 4. fractions of a euro, and words that are no number ----------------------------


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("½ euro", "0.50"),
        ("¼ euro", "0.25"),
        ("¾ euro", "0.75"),
        ("1½ euros", "1.50"),
        ("€½", "0.50"),
    ],
)
def test_a_fraction_of_a_euro_is_read_as_its_cents(
    bot: BotClient, written: str, amount: str
) -> None:
    reply = say(bot, f"move {written} from checking to savings")
    assert f"Move {amount} EUR from your checking account" in reply


def test_a_fraction_is_an_answer_to_how_much_not_a_reason_to_ask_again(bot: BotClient) -> None:
    reply = say(bot, "transfer ½ euro to bob")
    assert "How much" not in reply and "isn't a valid" not in reply
    assert "How much" in say(bot, "transfer money from checking to savings")
    assert "Move 0.50 EUR" in bot.say("½ euro")


@FAST
@given(st.integers(1, 9999), st.sampled_from(["½", "¼", "¾"]), st.sampled_from(["", " "]))
def test_a_whole_number_and_a_fraction_make_one_amount(
    bot: BotClient, whole: int, fraction: str, space: str
) -> None:
    cents = {"½": Decimal("0.50"), "¼": Decimal("0.25"), "¾": Decimal("0.75")}[fraction]
    reply = say(bot, f"move {whole}{space}{fraction} euros from checking to savings")
    assert f"Move {shown(whole + cents)} from" in reply


@FAST
@given(
    st.sampled_from(["NaN", "nan", "NAN", "inf", "Inf", "Infinity", "infinity", "-inf", "+inf"]),
    st.sampled_from(
        [
            "move {} euros from checking to savings",
            "move €{} from checking to savings",
            "move EUR {} from checking to savings",
            "pay Carol {} euros",
        ]
    ),
)
def test_nan_and_infinity_are_refused_with_a_reason(bot: BotClient, word: str, form: str) -> None:
    """Python reads them as floats; for money they are no amount, and the user is told."""
    reply = say(bot, form.format(word))
    assert f"{word}" in reply and "isn't a valid amount" in reply and "plain digits" in reply
    assert "Move" not in reply and "Pay " not in reply


@pytest.mark.parametrize(
    "message", ["send NaN euros to savings", "transfer inf euros to savings", "send ∞ euros"]
)
def test_the_testers_not_a_number_messages_get_a_reason(bot: BotClient, message: str) -> None:
    reply = say(bot, message)
    assert "isn't a valid amount" in reply and "plain digits" in reply


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_button_payload_with_a_json_nan_is_no_amount(bot: BotClient, constant: str) -> None:
    """JSON payloads may carry NaN and Infinity: refused as no number, not as "not > 0"."""
    payload = f'/transfer_money{{"amount": {constant}}}'
    reply = say(bot, payload)
    assert "isn't a valid amount: I need an amount of money here" in reply
    assert "more than zero" not in reply and "Move" not in reply
