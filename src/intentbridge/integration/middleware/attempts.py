"""``AttemptObserverMiddleware``: a span, a ``traceparent`` and a log event per attempt.

It sits right inside ``RetryMiddleware`` (the default chain puts it there), so it sees
every attempt, not just the call: each attempt is a CLIENT span, carries the W3C
``traceparent`` of that span to the backend (only while tracing is on, see
``intentbridge.observability.tracing``), and is logged as one ``call_attempt`` event::

    {"event": "call_attempt", "backend": "corebank", "operation": "check_balance",
     "method": "GET", "path": "/customers/alice/accounts", "status": 200,
     "outcome": "ok", "attempt": 1, "latency_ms": 1.8,
     "conversation_id": "rest:alice", "trace_id": "4bf92f35…"}

Paths are logged with sensitive parameter values as ``***``, as in ``CallRecord``;
headers, bodies and parameters are never logged.

>>> compose([ObserverMiddleware(hooks), RetryMiddleware(s), AttemptObserverMiddleware()], send)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Mapping
from contextvars import ContextVar

import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode

from intentbridge.integration.records import redact_path
from intentbridge.observability.tracing import current_trace_id, span, trace_headers
from intentbridge.types import Call, Next, Outcome, Result

__all__ = ["AttemptObserverMiddleware"]

log = structlog.get_logger("intentbridge.calls")

# Retry hands the very same Call object to every attempt; the last one seen here and
# its attempt count tell a retry (same object) from a new call (another object). Held
# per task, so concurrent calls never share a count.
_last_attempt: ContextVar[tuple[Call, int] | None] = ContextVar(
    "intentbridge_last_attempt", default=None
)

# Outcomes that are answers, not failures of the call itself: no error status on spans.
_ANSWERS: frozenset[Outcome] = frozenset({"ok", "rejected", "not_found", "denied"})


class AttemptObserverMiddleware:
    """Trace and log every attempt of a call (place it inside the retry middleware).

    ``sensitive`` maps an operation to the parameter names whose values must not
    appear in logged paths (those marked ``sensitive: true`` in ``bot.yaml``).
    """

    def __init__(self, *, sensitive: Mapping[str, Collection[str]] | None = None) -> None:
        self.sensitive = dict(sensitive or {})

    def _attempt_number(self, call: Call) -> int:
        last = _last_attempt.get()
        number = last[1] + 1 if last is not None and last[0] is call else 1
        _last_attempt.set((call, number))
        return number

    async def __call__(self, call: Call, call_next: Next) -> Result:
        attempt = self._attempt_number(call)
        started = time.perf_counter()
        with span(
            f"{call.method} {call.operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": call.method,
                "intentbridge.backend": call.backend,
                "intentbridge.operation": call.operation,
                "intentbridge.attempt": attempt,
            },
        ) as current:
            headers = trace_headers()
            sent = dataclasses.replace(call, headers=(*call.headers, *headers)) if headers else call
            result = await call_next(sent)
            trace_id = current_trace_id()
            if current.is_recording():
                current.set_attribute("intentbridge.outcome", result.outcome)
                if result.status_code is not None:
                    current.set_attribute("http.response.status_code", result.status_code)
                if result.outcome not in _ANSWERS:
                    current.set_status(Status(StatusCode.ERROR, result.outcome))
        log.info(
            "call_attempt",
            backend=call.backend,
            operation=call.operation,
            method=call.method,
            path=redact_path(call, self.sensitive.get(call.operation, ())),
            status=result.status_code,
            outcome=result.outcome,
            attempt=attempt,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            conversation_id=call.conversation_id,
            trace_id=trace_id,
            idempotency_key=call.idempotency_key,
            error=result.error,
        )
        return result
