"""Response mapping (JMESPath) and reply templates (sandboxed Jinja2)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from intentbridge.errors import ConfigError
from intentbridge.integration.mapping import ResponseMapping, compile_expression, map_response
from intentbridge.integration.templates import (
    FALLBACK_TEXT,
    check_templates,
    format_date,
    format_money,
    render,
    try_render,
)
from intentbridge.project.schema import BotConfig
from intentbridge.types import Money

ACCOUNTS = [
    {"id": "acc-1", "name": "checking", "balance": 1250.5, "currency": "EUR"},
    {"id": "acc-2", "name": "savings", "balance": 20, "currency": "EUR"},
]


def test_mapping_extracts_named_values() -> None:
    mapping = {"names": "[*].name", "savings": "[?name=='savings'].balance | [0]"}
    assert map_response(mapping, ACCOUNTS) == {"names": ["checking", "savings"], "savings": 20}


def test_empty_mapping_keeps_the_whole_body() -> None:
    assert map_response({}, ACCOUNTS) == {"body": ACCOUNTS}
    assert ResponseMapping({})(ACCOUNTS) == {"body": ACCOUNTS}


def test_expressions_are_compiled_once() -> None:
    assert compile_expression("[*].id") is compile_expression("[*].id")


def test_missing_values_map_to_none() -> None:
    assert ResponseMapping({"x": "nope.deeper"})({"a": 1}) == {"x": None}


def test_runtime_type_errors_do_not_fail_the_mapping() -> None:
    assert ResponseMapping({"total": "sum(@)"})({"not": "a list"}) == {"total": None}


def test_invalid_expression_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"operations\.x\.response\.bad"):
        ResponseMapping({"bad": "[?"}, where="operations.x.response")


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("1250.5"), "EUR", "1,250.50 EUR"),
        ("1250.5", "EUR", "1,250.50 EUR"),
        (1250.5, "EUR", "1,250.50 EUR"),
        (1250, None, "1,250.00"),
        (Money(Decimal("-50"), "USD"), None, "-50.00 USD"),
        (Money(Decimal("50"), "USD"), "EUR", "50.00 USD"),  # the value's own currency wins
        (Money(Decimal("50")), "EUR", "50.00 EUR"),
        (Decimal("0.125"), "BHD", "0.125 BHD"),  # never rounds digits away
        (0.1 + 0.2, None, "0.30"),
        ("not money", "EUR", "not money"),
        (None, "EUR", ""),
    ],
)
def test_money_filter(value: Any, currency: str | None, text: str) -> None:
    assert format_money(value, currency) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2027-03-03", "3 March 2027"),
        ("2027-03-03T10:00:00Z", "3 March 2027"),
        (dt.date(2027, 12, 25), "25 December 2027"),
        (dt.datetime(2027, 1, 9, 8, 30), "9 January 2027"),
        ("tomorrow", "tomorrow"),
    ],
)
def test_date_filter(value: Any, text: str) -> None:
    assert format_date(value) == text


def test_filters_in_templates() -> None:
    template = (
        "{% for a in data.accounts %}{{ a.name }}: {{ a.balance | money(a.currency) }}\n"
        "{% endfor %}Due {{ due | date }}; change {{ delta | abs | money }}"
    )
    text = render(template, data={"accounts": ACCOUNTS}, due="2027-03-03", delta="-12.5")
    assert text == "checking: 1,250.50 EUR\nsavings: 20.00 EUR\nDue 3 March 2027; change 12.50"


def test_money_objects_render_with_their_currency() -> None:
    assert render("{{ m | money }}", m=Money(Decimal("1250.5"), "EUR")) == "1,250.50 EUR"
    assert render("{{ m | abs | money }}", m=Money(Decimal("-3"), "EUR")) == "3.00 EUR"


def test_missing_values_render_empty() -> None:
    assert render("[{{ nothing }}][{{ a.b.c }}][{{ x | money }}]") == "[][][]"


def test_no_html_escaping_in_plain_text_replies() -> None:
    assert render("{{ name }}", name="Tom & Jerry <3") == "Tom & Jerry <3"


def test_runtime_errors_give_the_fallback() -> None:
    assert render("{{ 1 / 0 }}") == FALLBACK_TEXT
    assert try_render("{{ 1 / 0 }}", {}) is None


def test_sandbox_blocks_python_internals() -> None:
    assert render("{{ x.__class__.__mro__ }}", x=1) in ("", FALLBACK_TEXT)
    assert render("{{ d.clear() }}", d={"a": 1}) == FALLBACK_TEXT  # immutable sandbox


def _config(**operation: Any) -> BotConfig:
    return BotConfig.model_validate(
        {
            "backends": {"bank": {"base_url": "http://127.0.0.1:1"}},
            "operations": {"balance": {"backend": "bank", "path": "/x", **operation}},
        }
    )


def test_check_templates_accepts_good_templates() -> None:
    check_templates(_config(reply={"ok": "{{ data.x | money('EUR') }}"}))


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        ({"reply": {"ok": "{% for x in %}"}}, "operations.balance.reply.ok"),
        ({"reply": {"timeout": "{{ x | nosuchfilter }}"}}, "operations.balance.reply.timeout"),
        ({"confirm": "Send {{ amount | money }?"}, "operations.balance.confirm.text"),
        (
            {"parameters": {"to": {"ask": "Where {{ to"}}, "path": "/x/{to}"},
            "operations.balance.parameters.to.ask",
        ),
    ],
)
def test_check_templates_names_the_broken_field(operation: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_templates(_config(**operation))
    assert info.value.field == field


def test_check_templates_covers_project_responses() -> None:
    config = BotConfig.model_validate({"responses": {"fallback": "{{ oops"}})
    with pytest.raises(ConfigError, match=r"responses\.fallback"):
        check_templates(config)
