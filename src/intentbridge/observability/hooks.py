"""Subscribers that turn call records and decisions into metrics and log events.

Both hooks take anything a hook or decision hook hands them (``CallRecord``,
``RetryDecision``, breaker and rate-limit decisions) and pick what they understand,
by type for the records defined next door and by shape for the rest, so a new kind
of decision never breaks them::

    metrics, logs = MetricsHook(), LoggingHook()
    Integrations.from_config(
        config, hooks=[audit, metrics, logs], decision_hooks=[metrics, logs]
    )

==============================  ===============================  ==========================
record                          metrics                          log event
==============================  ===============================  ==========================
``CallRecord``                  ``intentbridge_call_seconds``,   ``call`` (debug: each
                                ``…_call_retries_total``         attempt is already logged)
``RetryDecision``               — (counted from the record)      ``retry``
breaker decision (``backend``,  ``intentbridge_breaker_state``   ``breaker``
``decision``/``state``)
rate-limit decision             ``intentbridge_rate_limited_``   ``rate_limited``
(``scope``)                     ``total`` when refused           (``decision`` if it waited)
any other decision              —                                ``decision``
==============================  ===============================  ==========================

Retries are counted from ``CallRecord.attempts`` rather than from decisions, so they
count once whether or not decision hooks are wired.
"""

from __future__ import annotations

from typing import Any

import structlog

from intentbridge.integration.middleware.retry import RetryDecision
from intentbridge.integration.records import CallRecord
from intentbridge.observability import metrics
from intentbridge.observability.tracing import current_trace_id

__all__ = ["LoggingHook", "MetricsHook"]

log = structlog.get_logger("intentbridge.calls")

# What a breaker decision's word means for the state gauge ("rejected" changes nothing).
_BREAKER_STATES = {
    "opened": "open",
    "open": "open",
    "half_open": "half_open",
    "half-open": "half_open",
    "closed": "closed",
}


# Words a rate-limit decision uses for "turned away" (rather than "made to wait").
_REFUSALS = frozenset({"limited", "rejected", "refused"})


def _word(value: Any) -> str | None:
    """A decision's ``str`` field, or the value of a ``str`` enum; None otherwise."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) else None


def _breaker_state(record: object) -> tuple[str, str] | None:
    backend = getattr(record, "backend", None)
    word = _word(getattr(record, "decision", None)) or _word(getattr(record, "state", None))
    if not isinstance(backend, str) or word is None or "breaker" not in _kind(record):
        return None
    state = _BREAKER_STATES.get(word.lower())
    return (backend, state) if state is not None else None


def _refused_scope(record: object) -> str | None:
    """The scope of a rate-limit decision that refused a call, else None."""
    if "ratelimit" not in _kind(record):
        return None
    scope = _word(getattr(record, "scope", None)) or _word(getattr(record, "backend", None))
    if scope is None:
        return None
    allowed = getattr(record, "allowed", None)
    word = _word(getattr(record, "decision", None))
    if allowed is True or (word is not None and word.lower() not in _REFUSALS):
        return None
    return scope


def _kind(record: object) -> str:
    return type(record).__name__.lower().replace("_", "")


class MetricsHook:
    """Publish call latency, retries, breaker state and rate-limit refusals.

    >>> Integrations.from_config(config, hooks=[MetricsHook()])
    """

    def __call__(self, record: object) -> None:
        if isinstance(record, CallRecord):
            if record.attempts > 0:  # a call never sent (denied while building) took no time
                metrics.observe_call(
                    backend=record.backend,
                    operation=record.operation,
                    outcome=record.outcome,
                    seconds=record.latency_ms / 1000,
                    attempts=record.attempts,
                )
            return
        if isinstance(record, RetryDecision):
            return
        breaker = _breaker_state(record)
        if breaker is not None:
            metrics.set_breaker_state(*breaker)
            return
        scope = _refused_scope(record)
        if scope is not None:
            metrics.count_rate_limited(scope)

    def __repr__(self) -> str:
        return "MetricsHook()"


class LoggingHook:
    """Log each call's summary and each resilience decision as a structlog event.

    Events carry the conversation id and the trace id; parameters, headers and
    bodies never appear (records arrive already redacted, and only names, outcomes
    and numbers are logged).

    >>> Integrations.from_config(config, hooks=[LoggingHook()])
    """

    def __call__(self, record: object) -> None:
        if isinstance(record, CallRecord):
            log.debug(
                "call",
                backend=record.backend,
                operation=record.operation,
                method=record.method,
                path=record.path,
                status=record.status_code,
                outcome=record.outcome,
                attempts=record.attempts,
                latency_ms=round(record.latency_ms, 2),
                conversation_id=record.conversation_id,
                trace_id=record.trace_id,
                idempotency_key=record.idempotency_key,
            )
            return
        if isinstance(record, RetryDecision):
            log.info(
                "retry",
                backend=record.call.backend,
                operation=record.call.operation,
                attempt=record.attempt,
                outcome=record.outcome,
                status=record.status_code,
                wait_s=round(record.wait, 3),
                conversation_id=record.call.conversation_id,
                trace_id=current_trace_id(),
            )
            return
        breaker = _breaker_state(record)
        if breaker is not None or "breaker" in _kind(record):
            log.warning(
                "breaker",
                backend=getattr(record, "backend", None),
                decision=_word(getattr(record, "decision", None))
                or _word(getattr(record, "state", None)),
                operation=getattr(record, "operation", None),
                trace_id=current_trace_id(),
            )
            return
        scope = _refused_scope(record)
        if scope is not None:
            log.warning(
                "rate_limited",
                scope=scope,
                backend=getattr(record, "backend", None),
                operation=getattr(record, "operation", None),
                trace_id=current_trace_id(),
            )
            return
        # Any other decision (a rate limit that made a call wait, a full bulkhead…):
        # named by its type, with the fields every decision shares.
        log.info(
            "decision",
            kind=type(record).__name__,
            decision=_word(getattr(record, "decision", None)),
            backend=getattr(record, "backend", None),
            operation=getattr(record, "operation", None),
            trace_id=current_trace_id(),
        )

    def __repr__(self) -> str:
        return "LoggingHook()"
