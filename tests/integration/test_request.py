"""Requests are built so user values can never change a request's shape."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intentbridge.errors import IntegrationError, UnsafeValueError
from intentbridge.integration.backend import BackendClient
from intentbridge.integration.request import build_call
from intentbridge.project.schema import Backend, Operation
from intentbridge.types import Money

BASE = "https://bank.example:8443/api/v1"


def op(**fields: Any) -> Operation:
    fields.setdefault("backend", "bank")
    names = fields.pop("names", ())
    fields.setdefault("parameters", {n: {} for n in names})
    return Operation.model_validate(fields)


def build(operation: Operation, params: dict[str, Any], key: str | None = None) -> Any:
    return build_call(
        "op", operation, "bank", params, conversation_id="c1", user_id="u1", idempotency_key=key
    )


_CLIENT = httpx.Client(base_url=BASE)  # never sends; only joins URLs as a client does


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    _CLIENT.close()


def wire_url(path: str, query: tuple[tuple[str, str], ...] = ()) -> httpx.URL:
    """The URL httpx would put on the wire, joined to the base URL as the client does."""
    return _CLIENT.build_request("GET", path, params=query or None).url


ACCOUNT_OP = op(path="/customers/{customer}/accounts/{account}", names=("customer", "account"))
no_controls = st.text(min_size=1).filter(
    lambda s: not any(unicodedata.category(c) == "Cc" for c in s)
)


@given(value=no_controls)
def test_any_path_value_stays_one_segment_on_the_same_host(value: str) -> None:
    call = build(ACCOUNT_OP, {"customer": value, "account": "acc-1"})
    url = wire_url(call.path)
    assert (url.scheme, url.host, url.port) == ("https", "bank.example", 8443)
    assert url.query == b""
    segments = url.raw_path.decode("ascii").split("/")
    assert segments[:4] == ["", "api", "v1", "customers"]
    assert segments[5:] == ["accounts", "acc-1"]
    assert unquote(segments[4]) == value


@given(value=st.text())
def test_any_query_value_round_trips_and_keeps_the_host(value: str) -> None:
    operation = op(path="/search", query={"q": "{q}", "fixed": "1"}, names=("q",))
    call = build(operation, {"q": value})
    url = wire_url(call.path, call.query)
    assert (url.host, url.path) == ("bank.example", "/api/v1/search")
    assert url.params.get_list("q") == [value]
    assert url.params["fixed"] == "1"


@pytest.mark.parametrize(
    "value", ["..", ".", "../../admin", "a/b", "x?y=1", "x#frag", "%2F", "@evil.com", "a:b", "ü€"]
)
def test_tricky_path_values_are_encoded(value: str) -> None:
    call = build(ACCOUNT_OP, {"customer": value, "account": "a"})
    url = wire_url(call.path)
    assert url.host == "bank.example"
    segment = url.raw_path.decode("ascii").split("/")[4]
    assert unquote(segment) == value
    assert segment not in (".", "..")


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\rb", "\x7f", "tab\there"])
def test_control_characters_in_path_are_refused_naming_the_parameter(value: str) -> None:
    with pytest.raises(UnsafeValueError, match="customer"):
        build(ACCOUNT_OP, {"customer": value, "account": "a"})


def test_empty_path_value_is_refused() -> None:
    """An empty segment could widen the request (/customers//accounts → all customers)."""
    with pytest.raises(UnsafeValueError, match="customer"):
        build(ACCOUNT_OP, {"customer": "", "account": "a"})


def test_missing_path_value_is_an_integration_error() -> None:
    with pytest.raises(IntegrationError, match="account"):
        build(ACCOUNT_OP, {"customer": "u1"})


@pytest.mark.parametrize("value", ["x\r\nX-Admin: 1", "x\nSet-Cookie: a", "x\x00", "€uro"])
def test_header_injection_is_refused(value: str) -> None:
    operation = op(path="/x", headers={"X-Note": "note {note}"}, names=("note",))
    with pytest.raises(UnsafeValueError, match="note"):
        build(operation, {"note": value})


def test_idempotency_key_with_newline_is_refused() -> None:
    with pytest.raises(UnsafeValueError):
        build(op(path="/x"), {}, key="k\r\nX-Evil: 1")


def test_header_and_query_values_are_formatted() -> None:
    operation = op(
        path="/x",
        query={"amount": "{amount}", "day": "{day}", "ids": "{ids}", "opt": "{opt}"},
        headers={"X-Currency": "{amount.currency}", "X-Flag": "{flag}"},
        names=("amount", "day", "ids", "opt", "flag"),
    )
    call = build(
        operation,
        {
            "amount": Money(Decimal("50"), "EUR"),
            "day": dt.date(2027, 3, 3),
            "ids": ["a", "b"],
            "opt": None,
            "flag": True,
        },
    )
    assert call.query == (("amount", "50.00"), ("day", "2027-03-03"), ("ids", "a"), ("ids", "b"))
    assert call.headers == (("X-Currency", "EUR"), ("X-Flag", "true"))


def test_body_keeps_types_for_whole_placeholders() -> None:
    operation = op(
        path="/transfers",
        method="POST",
        body={
            "amount": "{amount}",
            "currency": "{amount.currency}",
            "exact": "{rate}",
            "count": "{n}",
            "flag": "{flag}",
            "when": "{when}",
            "memo": "Transfer of {amount} to {to}",
            "nested": {"list": ["{amount.amount}", "literal", 3]},
            "optional": "{opt}",
            "account": "{to.id}",
        },
        names=("amount", "rate", "n", "flag", "when", "to", "opt"),
    )
    call = build(
        operation,
        {
            "amount": Money(Decimal("50"), "EUR"),
            "rate": Decimal("0.000123400"),
            "n": 3,
            "flag": False,
            "when": dt.date(2027, 3, 3),
            "to": {"id": "acc-2", "name": "savings"},
        },
    )
    assert call.json == {
        "amount": "50.00",
        "currency": "EUR",
        "exact": "0.000123400",
        "count": 3,
        "flag": False,
        "when": "2027-03-03",
        "memo": "Transfer of 50.00 EUR to {'id': 'acc-2', 'name': 'savings'}",
        "nested": {"list": ["50", "literal", 3]},
        "optional": None,
        "account": "acc-2",
    }


def test_money_amounts_are_never_rounded() -> None:
    operation = op(path="/x", method="POST", body={"a": "{a}"}, names=("a",))
    assert build(operation, {"a": Money(Decimal("1.005"), "BHD")}).json == {"a": "1.005"}
    assert build(operation, {"a": Money(Decimal("1E+3"), "EUR")}).json == {"a": "1000.00"}


def test_body_with_injection_attempt_stays_data() -> None:
    operation = op(path="/x", method="POST", body={"memo": "{memo}"}, names=("memo",))
    evil = '", "admin": true, "x": "'
    assert build(operation, {"memo": evil}).json == {"memo": evil}


async def test_built_request_reaches_a_real_server_intact(fake: Any, base_url: str) -> None:
    operation = op(
        path="/echo/{a}/fixed",
        method="POST",
        query={"q": "{q}"},
        body={"memo": "{q}", "n": "{n}"},
        names=("a", "q", "n"),
    )
    call = build(operation, {"a": "../../status/500?x#y", "q": "a&b=c d", "n": 7}, key="key-1")
    client = BackendClient("bank", Backend(base_url=base_url))
    try:
        result = await client.send(call)
    finally:
        await client.aclose()
    assert result.outcome == "ok"
    seen = result.body
    assert seen["raw_path"] == "/echo/..%2F..%2Fstatus%2F500%3Fx%23y/fixed"
    assert seen["query_items"] == [["q", "a&b=c d"]]
    assert seen["json"] == {"memo": "a&b=c d", "n": 7}
    assert seen["headers"]["idempotency-key"] == "key-1"


@pytest.mark.parametrize("value", ["..", ".", "%2e%2e", "%2E%2E", ".%2E"])
async def test_dot_segments_stay_one_segment_on_the_wire(base_url: str, value: str) -> None:
    """What reaches the server is the path as built: no URL library re-resolves ``..``."""
    operation = op(path="/echo/{a}/fixed", names=("a",))
    client = BackendClient("bank", Backend(base_url=base_url))
    try:
        result = await client.send(build(operation, {"a": value}))
    finally:
        await client.aclose()
    assert result.outcome == "ok", result
    raw_path = result.body["raw_path"]
    assert raw_path.startswith("/echo/") and raw_path.endswith("/fixed")
    assert unquote(raw_path.split("/")[2]) == value


@pytest.mark.parametrize(
    ("where", "value"),
    [
        *((where, "a\ud800b") for where in ("path", "query", "header", "body")),
        *((where, "x" * 10_000) for where in ("path", "query", "header")),  # a body may
    ],
)
def test_values_no_request_can_carry_are_refused_naming_the_parameter(
    where: str, value: str
) -> None:
    """A lone surrogate cannot be encoded at all; 10 000 characters no server takes."""
    by_place: dict[str, dict[str, Any]] = {
        "path": {"path": "/x/{v}"},
        "query": {"path": "/x", "query": {"q": "{v}"}},
        "header": {"path": "/x", "headers": {"X-V": "{v}"}},
        "body": {"path": "/x", "method": "POST", "body": {"memo": "{v}", "t": "say {v}"}},
    }
    fields = by_place[where]
    with pytest.raises(UnsafeValueError, match="parameter 'v'"):
        build(op(names=("v",), **fields), {"v": value})
