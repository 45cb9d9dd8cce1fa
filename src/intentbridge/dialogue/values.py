"""Turn what the user said into a parameter's typed value, and check it.

>>> coerce(Parameter(type="money", default_currency="EUR"), "30")
Money(amount=Decimal('30'), currency='EUR')
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from intentbridge.project.schema import Parameter
from intentbridge.types import Money
from intentbridge.understanding.extractors.money import MAX_AMOUNT

_NUMBER = re.compile(r"^[-+]?\d{1,3}(?:[,\s]\d{3})*(?:\.\d+)?$|^[-+]?\d+(?:\.\d+)?$")


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a value was refused, in words for the user."""

    reason: str


def coerce(param: Parameter, value: Any, *, previous: Any = None) -> Any | Invalid:
    """The typed value for ``param``, or :class:`Invalid` saying why not."""
    try:
        typed = _to_type(param, value, previous)
    except (ValueError, InvalidOperation, TypeError):
        return Invalid(f"I need {_kind(param)} here")
    if isinstance(typed, Invalid):
        return typed
    return _check(param, typed)


def _to_type(param: Parameter, value: Any, previous: Any) -> Any:
    kind = param.type
    if kind == "money":
        return _to_money(param, value, previous)
    if kind == "integer":
        number = _to_decimal(value)
        if number != number.to_integral_value():
            return Invalid("I need a whole number here")
        return int(number)
    if kind == "number":
        return _to_decimal(value)
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value).strip())
    if kind == "boolean":
        text = str(value).strip().lower()
        if text in {"yes", "true", "y", "1"}:
            return True
        if text in {"no", "false", "n", "0"}:
            return False
        raise ValueError(text)
    if kind == "string":
        if isinstance(value, Money | dt.date):
            raise TypeError(value)
        return str(value).strip()
    return value


def _to_money(param: Parameter, value: Any, previous: Any) -> Money:
    default_currency = param.default_currency
    if isinstance(previous, Money) and previous.currency:
        default_currency = previous.currency
    if isinstance(value, Money):
        if value.currency is None and default_currency:
            return Money(value.amount, default_currency)
        return value
    return Money(_to_decimal(value), default_currency)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int | Decimal | float):
        # a JSON payload may carry NaN or Infinity: not a number of anything
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite():
            raise ValueError(value)
        return number
    text = str(value).strip()
    if not _NUMBER.match(text):
        raise ValueError(text)
    return Decimal(text.replace(",", "").replace(" ", ""))


def _check(param: Parameter, value: Any) -> Any | Invalid:
    if param.type == "money":
        amount = value.amount
        if not amount.is_finite() or amount <= 0:
            return Invalid("the amount must be more than zero")
        if amount >= MAX_AMOUNT:
            # the extractor's bound, for numbers it did not read as money: no one moves a
            # quadrillion, and cents of a 30-digit sum overflow the decimal context
            if param.max is not None:
                return Invalid(f"the largest amount is {param.max:g}")
            return Invalid("that amount is too large")
        if amount != amount.quantize(Decimal("0.01")):
            return Invalid("amounts can have at most two decimal places")
        if param.min is not None and amount < Decimal(str(param.min)):
            return Invalid(f"the smallest amount is {param.min:g}")
        if param.max is not None and amount > Decimal(str(param.max)):
            return Invalid(f"the largest amount is {param.max:g}")
        if param.currencies is not None and value.currency not in param.currencies:
            return Invalid("I can only use " + " or ".join(param.currencies))
        # one form for one amount: "10", "10.0" and "10.00" all become 10.00
        return Money(amount.quantize(Decimal("0.01")), value.currency)
    if param.type in ("integer", "number"):
        if param.min is not None and value < param.min:
            return Invalid(f"it must be at least {param.min:g}")
        if param.max is not None and value > param.max:
            return Invalid(f"it must be at most {param.max:g}")
        return value
    if param.type == "string":
        if not value:
            return Invalid("it can't be empty")
        if param.choices is not None:
            for choice in param.choices:
                if choice.lower() == value.lower():
                    return choice
            return Invalid("please choose one of " + ", ".join(param.choices))
        if param.pattern is not None and not re.fullmatch(param.pattern, value):
            return Invalid("that isn't in the expected format")
    return value


def _kind(param: Parameter) -> str:
    return {
        "money": "an amount of money",
        "integer": "a whole number",
        "number": "a number",
        "date": "a date",
        "boolean": "a yes or no",
    }.get(param.type, "a value")
