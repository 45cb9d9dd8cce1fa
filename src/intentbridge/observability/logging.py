"""structlog set-up: JSON lines in production, readable lines in a terminal; secrets redacted.

>>> configure_logging(json=True)
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|authorization|api[_-]?key|cookie|pin|iban|card)", re.I
)
REDACTED = "***"


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: values under secret-looking keys never reach the output."""
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = REDACTED
        elif isinstance(event[key], dict):
            event[key] = {
                k: (REDACTED if _SECRET_KEYS.search(str(k)) else v) for k, v in event[key].items()
            }
    return event


def configure_logging(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """Route structlog events to stderr, as JSON unless stderr is a terminal."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
