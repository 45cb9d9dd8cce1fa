"""structlog set-up: JSON lines in production, readable lines in a terminal; secrets redacted.

>>> configure_logging(json=True)
>>> redact_server_logs()  # uvicorn's access log: ?token=s3cr3t becomes ?token=***
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import unquote_plus

import structlog

from intentbridge.observability.tracing import current_trace_id

_SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|authorization|api[_-]?key|cookie|pin|iban|card)", re.I
)
REDACTED = "***"


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    # Field names repeat on every event; one regex search per name, not per event,
    # keeps redaction off the turn's hot path.
    return _SECRET_KEYS.search(key) is not None


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: values under secret-looking keys never reach the output."""
    for key in list(event):
        if _secret_key(key):
            event[key] = REDACTED
        elif isinstance(event[key], dict):
            event[key] = {
                k: (REDACTED if _secret_key(str(k)) else v) for k, v in event[key].items()
            }
    return event


# Query parameters carry short names the field-name pattern above would miss (``key``,
# ``sig``); matched as whole words so that ``monkey`` stays readable.
_SECRET_PARAMS = re.compile(r"(?<![a-z])(key|sig|signature)(?![a-z])", re.I)
_QUERY_PAIR = re.compile(r"(?<=[?&])([^=&\s]+)=([^&\s]*)")


def _secret_param(name: str) -> bool:
    plain = unquote_plus(name)  # ?%74oken= is ?token= to the server that reads it
    return _secret_key(plain) or _SECRET_PARAMS.search(plain) is not None


def _redact_pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={REDACTED}" if value and _secret_param(name) else match.group(0)


def redact_query(text: str) -> str:
    """``text`` with the values of secret-looking query parameters replaced by ``***``.

    >>> redact_query("/webhooks/rest/webhook?token=s3cr3t&stream=true")
    '/webhooks/rest/webhook?token=***&stream=true'
    """
    if "?" not in text:
        return text
    return _QUERY_PAIR.sub(_redact_pair, text)


class RedactQueryFilter(logging.Filter):
    """A :mod:`logging` filter: URLs in a record lose their secret query values.

    uvicorn's access log prints each request target with its query string, where REST
    clients put the channel token (``?token=``); the record's arguments are rewritten
    before any handler formats them, so every formatter and destination gets them clean.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            record.args = {k: redact_query(v) if isinstance(v, str) else v for k, v in args.items()}
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")
"""The loggers uvicorn writes request targets to (HTTP access lines, WebSocket lines)."""


def redact_server_logs() -> None:
    """Keep secret query values out of uvicorn's logs, however uvicorn is started.

    Installs :class:`RedactQueryFilter` on :data:`SERVER_LOGGERS`, once; a filter on a
    logger survives uvicorn's own ``dictConfig``, so calling this before or after
    ``uvicorn.run`` both work. ``rest_router`` (and so ``create_app``) calls it.
    """
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
            logger.addFilter(RedactQueryFilter())


def add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: events inside a recorded trace carry its ``trace_id``."""
    if "trace_id" not in event:
        trace_id = current_trace_id()
        if trace_id is not None:
            event["trace_id"] = trace_id
    return event


LEVEL_ENV = "INTENTBRIDGE_LOG_LEVEL"


class _StderrLogger:
    """Writes each rendered event to whatever ``sys.stderr`` is at that moment.

    structlog's PrintLogger keeps the stream it was made with; a test runner or a
    daemon that swaps stderr would then write to a closed file.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stderr_logger(*_: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(
    *,
    json: bool | None = None,
    level: int | None = None,
    file: TextIO | None = None,
    cache: bool = True,
) -> None:
    """Route structlog events to ``file`` (stderr), as JSON unless it is a terminal.

    The level comes from ``level``, else ``$INTENTBRIDGE_LOG_LEVEL`` (``info`` by default).
    ``cache``: each logger keeps this set-up from its first use on (faster; a later
    call does not change it). Off, a later call still applies to every logger.
    """
    if level is None:
        name = os.environ.get(LEVEL_ENV, "info").upper()
        level = logging.getLevelNamesMapping().get(name, logging.INFO)
    out = file if file is not None else sys.stderr
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_trace_id,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=file) if file else _stderr_logger,
        cache_logger_on_first_use=cache,
    )
