"""Response mapping: pick named values out of a backend's JSON with JMESPath.

Expressions are compiled once (cached by text), so mapping a response costs only
the searches.

>>> map_response({"balance": "accounts[?name=='savings'].balance | [0]"}, body)
{'balance': 1250.5}
>>> map_response({}, body)          # no mapping: the whole body
{'body': ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jmespath
import structlog
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from intentbridge.errors import ConfigError

log = structlog.get_logger(__name__)

__all__ = ["ResponseMapping", "compile_expression", "map_response"]


@lru_cache(maxsize=4096)
def compile_expression(expression: str) -> ParsedResult:
    """Compile a JMESPath expression once; raises ``jmespath`` errors when invalid."""
    return jmespath.compile(expression)


class ResponseMapping:
    """A compiled ``name -> JMESPath`` mapping (an operation's ``response``).

    Compile at load time so a bad expression is a ``ConfigError`` naming the field.
    """

    __slots__ = ("_expressions",)

    def __init__(self, mapping: Mapping[str, str], *, where: str = "response") -> None:
        compiled: list[tuple[str, ParsedResult]] = []
        for name, expression in mapping.items():
            try:
                compiled.append((name, compile_expression(expression)))
            except JMESPathError as exc:
                raise ConfigError(
                    f"invalid JMESPath {expression!r}: {exc}",
                    field=f"{where}.{name}",
                    hint="see https://jmespath.org/tutorial.html",
                ) from None
        self._expressions = tuple(compiled)

    def __call__(self, body: Any) -> dict[str, Any]:
        if not self._expressions:
            return {"body": body}
        data: dict[str, Any] = {}
        for name, expr in self._expressions:
            try:
                data[name] = expr.search(body)
            except JMESPathError:
                # A body of an unexpected shape (wrong type for a function) must not
                # turn a call that happened into a failure; the value is just missing.
                log.warning("response_mapping_failed", field=name)
                data[name] = None
        return data


def map_response(mapping: Mapping[str, str], body: Any) -> dict[str, Any]:
    """Apply ``mapping`` (name → JMESPath) to ``body``; empty mapping → ``{"body": body}``."""
    if not mapping:
        return {"body": body}
    return {name: compile_expression(expr).search(body) for name, expr in mapping.items()}
