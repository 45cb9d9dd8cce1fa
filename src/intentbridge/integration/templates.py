"""Reply templates: sandboxed Jinja2, compiled once, never failing a conversation.

Replies are plain text, so autoescaping is off; the sandbox still keeps templates
from reaching into Python internals. Missing values render empty (``{{ a.b.c }}`` of
nothing is ``""``). Filters:

- ``money``: ``{{ 1250.5 | money('EUR') }}`` → ``1,250.50 EUR``; accepts ``Money``
  (its own currency wins), ``Decimal``, ``int``, ``float`` and numeric strings.
  One format everywhere: thousands with ``,``, two decimals (more when given), the
  ISO code after the amount — unambiguous for every currency;
- ``date``: ISO string, ``date`` or ``datetime`` → ``3 March 2027``;
- ``abs``: absolute value, also of ``Money`` and numeric strings.

Syntax errors are found when the project loads (``check_templates``); errors while
rendering are logged and a safe fallback is returned.

>>> render("You have {{ balance | money(currency) }}.", balance="1250.5", currency="EUR")
'You have 1,250.50 EUR.'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import structlog
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from intentbridge.errors import ConfigError
from intentbridge.project.schema import BotConfig
from intentbridge.types import Money

__all__ = [
    "FALLBACK_TEXT",
    "check_templates",
    "compile_template",
    "format_date",
    "format_money",
    "render",
    "try_render",
]

log = structlog.get_logger(__name__)

FALLBACK_TEXT = "Sorry, I couldn't put that answer into words."
"""What ``render`` returns when a template fails at runtime."""

# English names regardless of the process locale (strftime's %B follows it).
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest repr, not the binary expansion
    if isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def format_money(value: Any, currency: str | None = None) -> str:
    """``1,250.50 EUR``: grouped thousands, two decimals, ISO code after the amount.

    Exact amounts (``Decimal``, ``str``, ``Money``) with more than two decimals keep
    them (``0.125 BHD``); floats are shown with two.
    """
    if isinstance(value, Undefined) or value is None:
        return ""
    if isinstance(value, Money):
        currency = value.currency or currency
        value = value.amount
    amount = _to_decimal(value)
    if amount is None:
        return str(value)
    if isinstance(currency, Undefined):
        currency = None
    exponent = amount.as_tuple().exponent
    places = 2
    if not isinstance(value, float) and isinstance(exponent, int) and exponent < -2:
        # Exact amounts keep every digit given; a float's extra digits are noise.
        places = -exponent
    text = f"{amount:,.{places}f}"
    if text.startswith("-") and amount.is_zero():
        text = text[1:]
    return f"{text} {currency}" if currency else text


def format_date(value: Any) -> str:
    """``3 March 2027`` from an ISO string, ``date`` or ``datetime``; else unchanged."""
    if isinstance(value, Undefined) or value is None:
        return ""
    day: dt.date | None = None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            try:
                day = dt.datetime.fromisoformat(value.strip()).date()
            except ValueError:
                return value
    if day is None:
        return str(value)
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _abs(value: Any) -> Any:
    if isinstance(value, Money):
        return Money(abs(value.amount), value.currency)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return abs(value)
    number = _to_decimal(value)
    return abs(number) if number is not None else value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False,  # replies are plain text, not HTML
        undefined=ChainableUndefined,  # a missing value renders empty, even a.b.c
        keep_trailing_newline=False,
    )
    env.filters["money"] = format_money
    env.filters["date"] = format_date
    env.filters["abs"] = _abs
    return env


_ENV = _environment()


@lru_cache(maxsize=2048)
def compile_template(source: str) -> Template:
    """Compile ``source`` once; raises ``jinja2.TemplateSyntaxError`` when invalid."""
    return _ENV.from_string(source)


def try_render(template: str, context: Mapping[str, Any]) -> str | None:
    """Render, or None (logged) when the template fails, so callers pick a fallback."""
    try:
        return compile_template(template).render(context)
    except Exception as exc:  # any error inside a user template, sandbox refusals too
        log.warning("template_failed", error_type=type(exc).__name__, template=template[:80])
        return None


def render(template: str, /, **context: Any) -> str:
    """Render a reply template; never raises for template errors (``FALLBACK_TEXT``)."""
    text = try_render(template, context)
    return FALLBACK_TEXT if text is None else text


def _project_templates(config: BotConfig) -> Iterator[tuple[str, str]]:
    for name, op in config.operations.items():
        for key, text in op.reply.items():
            yield f"operations.{name}.reply.{key}", text
        if op.confirm is not None:
            yield f"operations.{name}.confirm.text", op.confirm.text
        for pname, param in op.parameters.items():
            for attr in ("ask", "invalid"):
                text = getattr(param, attr)
                if text:
                    yield f"operations.{name}.parameters.{pname}.{attr}", text
    for key, value in config.responses.model_dump().items():
        if isinstance(value, str):
            yield f"responses.{key}", value


def check_templates(config: BotConfig) -> None:
    """Compile every template of the project; a syntax error is a ``ConfigError``.

    The error names the field (``operations.transfer.reply.ok``) and the line.
    """
    for where, source in _project_templates(config):
        try:
            compile_template(source)
        except TemplateSyntaxError as exc:
            raise ConfigError(
                f"template syntax error: {exc.message} (template line {exc.lineno})",
                field=where,
                hint="see https://jinja.palletsprojects.com/en/stable/templates/",
            ) from None
