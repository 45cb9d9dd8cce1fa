"""Build a ``Call`` from an operation and its parameters, safely.

User-supplied values never change the shape of a request:

- in the path each value is percent-encoded as part of one segment, so ``../``,
  ``/``, ``?``, ``#``, ``@`` and ``:`` stay data and can never reach another path or
  host; a value that would turn a segment into ``.`` or ``..`` has its dots encoded
  (and the transport sends the path as built, never re-normalised);
  empty values and control characters are refused;
- query values go to httpx as (key, value) pairs and are encoded there;
- header values with CR, LF, NUL or other control characters, or outside latin-1,
  are refused (no header injection);
- path, query and header values longer than 8192 characters, and any value that is
  not valid Unicode (a lone surrogate) are refused: no server would take them;
- the JSON body is built as data and serialised by httpx, never by string templating.

Placeholders are ``{name}`` or ``{name.attr}``; ``attr`` reads a key of a mapping or an
attribute of an object (``{amount.currency}`` of a ``Money``).

>>> call = build_call("transfer", op, "bank", {"amount": Money(Decimal("50"), "EUR")},
...                   conversation_id="c1", user_id="u1", idempotency_key="k1")
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from intentbridge.errors import IntegrationError, UnsafeValueError
from intentbridge.project.schema import Operation
from intentbridge.text import is_unicode, json_is_unicode
from intentbridge.types import Call, Money

__all__ = ["build_call", "json_value", "text_value"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_MISSING: Any = object()

# A parsed template: literal strings and (name, attrs) references, in order.
_Ref = tuple[str, tuple[str, ...]]
_Parts = tuple[str | _Ref, ...]


@lru_cache(maxsize=4096)
def _parse(template: str) -> _Parts:
    # Cached: the same operation templates are parsed on every call otherwise.
    parts: list[str | _Ref] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > pos:
            parts.append(template[pos : match.start()])
        attrs = tuple(match.group(2).split(".")[1:]) if match.group(2) else ()
        parts.append((match.group(1), attrs))
        pos = match.end()
    if pos < len(template):
        parts.append(template[pos:])
    return tuple(parts)


def _lookup(params: Mapping[str, Any], ref: _Ref) -> Any:
    name, attrs = ref
    value = params.get(name, _MISSING)
    for attr in attrs:
        if value is _MISSING or value is None:
            return value
        if attr.startswith("_"):
            # Templates come from bot.yaml, but private attributes are never data.
            raise IntegrationError(
                f"placeholder {{{name}.{attr}}}: private attributes are not allowed"
            )
        value = value.get(attr, None) if isinstance(value, Mapping) else getattr(value, attr, None)
    return value


def _decimal_text(amount: Decimal) -> str:
    return format(amount, "f")


def _money_text(amount: Decimal) -> str:
    # Two decimals as money is written, but never round away digits that were given.
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def text_value(value: Any) -> str:
    """The text form of a parameter value in a path, query or header.

    ``Money`` → its amount (``"50.00"``), ``Decimal`` → exact digits without exponent,
    dates → ISO 8601, booleans → ``"true"``/``"false"``, enums → their value.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Money):
        return _money_text(value.amount)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return text_value(value.value)
    return str(value)


def json_value(value: Any) -> Any:
    """A parameter value as JSON data, keeping its type where JSON has one.

    ``Money`` → amount string ``"50.00"``; ``Decimal`` → string of its exact digits
    (a float would lose them); dates → ISO strings; lists and mappings recursively.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Money):
        return _money_text(value.amount)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    return str(value)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


_MAX_TEXT = 8192
"""Longest value placed in a path segment, query value or header (servers refuse more)."""


def _check_unicode(text: str, what: str) -> None:
    if not is_unicode(text):
        # a lone surrogate (JSON "\ud800" from a chat client): no bytes can carry it
        raise UnsafeValueError(f"{what} is not valid Unicode text")


def _check_text(text: str, what: str) -> None:
    if len(text) > _MAX_TEXT:
        raise UnsafeValueError(f"{what} is longer than {_MAX_TEXT} characters")
    _check_unicode(text, what)


def _check_json(value: Any, what: str) -> Any:
    if not json_is_unicode(value):
        raise UnsafeValueError(f"{what} is not valid Unicode text")
    return value


def _required(params: Mapping[str, Any], ref: _Ref, where: str) -> Any:
    value = _lookup(params, ref)
    if value is _MISSING or value is None:
        raise IntegrationError(f"parameter {ref[0]!r} has no value but the {where} needs it")
    return value


def _build_path(template: str, params: Mapping[str, Any]) -> str:
    segments: list[str] = []
    for segment in template.split("/"):
        parts = _parse(segment)
        if all(isinstance(p, str) for p in parts):
            segments.append(segment)
            continue
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = text_value(_required(params, part, "path"))
            if not text:
                raise UnsafeValueError(
                    f"parameter {part[0]!r} is empty; a path segment needs a value"
                )
            if _has_control(text):
                raise UnsafeValueError(f"parameter {part[0]!r} contains control characters")
            _check_text(text, f"parameter {part[0]!r}")
            out.append(quote(text, safe=""))
        rendered = "".join(out)
        if rendered in (".", ".."):
            # quote() leaves dots alone, and "." / ".." segments would be collapsed
            # by URL normalisation into a different path.
            rendered = rendered.replace(".", "%2E")
        segments.append(rendered)
    return "/".join(segments)


def _render_text(template: str, params: Mapping[str, Any]) -> str | None:
    """Render a query/header template; None when it is one placeholder without value."""
    parts = _parse(template)
    if len(parts) == 1 and not isinstance(parts[0], str):
        value = _lookup(params, parts[0])
        return None if value is _MISSING or value is None else text_value(value)
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            value = _lookup(params, part)
            out.append("" if value is _MISSING or value is None else text_value(value))
    return "".join(out)


def _build_query(
    templates: Mapping[str, str], params: Mapping[str, Any]
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for key, template in templates.items():
        parts = _parse(template)
        refs = [p[0] for p in parts if not isinstance(p, str)]
        what = f"parameter {refs[0]!r}" if refs else f"query {key!r}"
        if len(parts) == 1 and not isinstance(parts[0], str):
            value = _lookup(params, parts[0])
            if isinstance(value, list | tuple):
                # One placeholder holding a list repeats the key: ?id=1&id=2.
                for item in value:
                    item_text = text_value(item)
                    _check_text(item_text, what)
                    pairs.append((key, item_text))
                continue
        rendered = _render_text(template, params)
        if rendered is not None:
            _check_text(rendered, what)
            pairs.append((key, rendered))
    return tuple(pairs)


def _check_header(name: str, value: str) -> None:
    if any(ch in value for ch in "\r\n\x00") or any(
        unicodedata.category(ch) == "Cc" and ch != "\t" for ch in value
    ):
        raise UnsafeValueError(f"header {name!r}: value contains CR, LF, NUL or control characters")
    if len(value) > _MAX_TEXT:
        raise UnsafeValueError(f"header {name!r}: value is longer than {_MAX_TEXT} characters")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise UnsafeValueError(
            f"header {name!r}: value has characters outside latin-1 and cannot be sent as a header"
        ) from None


def _build_headers(
    templates: Mapping[str, str], params: Mapping[str, Any]
) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for name, template in templates.items():
        text = _render_text(template, params)
        if text is None:
            continue
        try:
            _check_header(name, text)
        except UnsafeValueError as exc:
            refs = [p[0] for p in _parse(template) if not isinstance(p, str)]
            if refs:
                raise UnsafeValueError(f"parameter {refs[0]!r} in {exc}") from None
            raise
        headers.append((name, text))
    return tuple(headers)


def _build_body(body: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(body, str):
        parts = _parse(body)
        if not parts or all(isinstance(p, str) for p in parts):
            return body
        if len(parts) == 1:
            value = _lookup(params, parts[0])  # type: ignore[arg-type]
            if value is _MISSING:
                return None
            return _check_json(json_value(value), f"parameter {parts[0][0]!r}")
        # Part of a longer string: formatted as text, as a person would read it.
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = _lookup(params, part)
                text = "" if value is _MISSING or value is None else str(value)
                out.append(_check_json(text, f"parameter {part[0]!r}"))
        return "".join(out)
    if isinstance(body, Mapping):
        return {k: _build_body(v, params) for k, v in body.items()}
    if isinstance(body, list):
        return [_build_body(v, params) for v in body]
    return body


def build_call(
    op_name: str,
    op: Operation,
    backend_name: str,
    params: Mapping[str, Any],
    *,
    conversation_id: str | None,
    user_id: str | None,
    idempotency_key: str | None,
) -> Call:
    """Turn an operation and its parameter values into a ``Call`` ready to send.

    Raises ``UnsafeValueError`` (naming the parameter) when a value cannot be placed
    safely, and ``IntegrationError`` when a path placeholder has no value.
    """
    if idempotency_key is not None:
        _check_header("Idempotency-Key", idempotency_key)
    return Call(
        backend=backend_name,
        operation=op_name,
        method=op.method,
        path=_build_path(op.path, params),
        query=_build_query(op.query, params),
        headers=_build_headers(op.headers, params),
        json=_build_body(op.body, params),
        idempotency_key=idempotency_key,
        conversation_id=conversation_id,
        user_id=user_id,
        params=params,
        moves_money=op.moves_money,
    )
