"""Prometheus metrics, defined once at import on the default registry.

``GET /metrics`` (``intentbridge.server.app``) serves them. Every name starts with
``intentbridge_``; labels are bounded by the bot project (backends, operations,
intents, outcomes), never by who is talking: a label per user or conversation would
grow without bound and leak who uses the bot.

=========================================  =========  ================================
name                                       type       labels
=========================================  =========  ================================
``intentbridge_turn_seconds``              histogram  —
``intentbridge_turns_total``               counter    ``intent``
``intentbridge_fallback_total``            counter    —
``intentbridge_nlu_confidence``            histogram  —
``intentbridge_call_seconds``              histogram  ``backend, operation, outcome``
``intentbridge_call_retries_total``        counter    ``backend, operation``
``intentbridge_breaker_state``             gauge      ``backend`` (0 closed, 1 half-open,
                                                      2 open)
``intentbridge_rate_limited_total``        counter    ``scope``
``intentbridge_turn_failures_total``       counter    —
``intentbridge_http_responses_total``      counter    ``route, status_class``
``intentbridge_http_exceptions_total``     counter    ``route``
=========================================  =========  ================================

``route`` is the route's template (``/conversations/{sender}/outbox``), or
``unmatched`` for a path no route serves, so a scan of random URLs adds no series;
``status_class`` is ``2xx`` … ``5xx``.

The fallback rate is ``rate(intentbridge_fallback_total[5m]) /
rate(intentbridge_turns_total[5m])`` summed over intents; the server error rate is
``sum(rate(intentbridge_http_responses_total{status_class="5xx"}[5m]))`` over the same
sum for every class.

>>> observe_turn(0.004, intent="check_balance", fallback=False)
>>> set_breaker_state("corebank", "open")
>>> count_http_response("/webhooks/rest/webhook", 422)
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BREAKER_STATE",
    "CALL_RETRIES",
    "CALL_SECONDS",
    "FALLBACKS",
    "HTTP_EXCEPTIONS",
    "HTTP_RESPONSES",
    "LATENCY_BUCKETS",
    "NLU_CONFIDENCE",
    "OTHER_INTENT",
    "RATE_LIMITED",
    "TURNS",
    "TURN_FAILURES",
    "TURN_SECONDS",
    "UNMATCHED_ROUTE",
    "count_http_exception",
    "count_http_response",
    "count_rate_limited",
    "count_turn_failure",
    "intent_label",
    "observe_call",
    "observe_turn",
    "set_breaker_state",
]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds; a turn takes a few milliseconds, a slow backend call seconds."""

_CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

TURN_SECONDS = Histogram(
    "intentbridge_turn_seconds",
    "Time to handle one message, from its conversation loaded to saved.",
    buckets=LATENCY_BUCKETS,
)
TURNS = Counter(
    "intentbridge_turns_total",
    "Messages handled, by the intent they were understood as.",
    ["intent"],
)
FALLBACKS = Counter(
    "intentbridge_fallback_total",
    "Messages no intent was confident enough for (the fallback intent).",
)
NLU_CONFIDENCE = Histogram(
    "intentbridge_nlu_confidence",
    "Confidence of the best intent the NLU found (button payloads excluded).",
    buckets=_CONFIDENCE_BUCKETS,
)
CALL_SECONDS = Histogram(
    "intentbridge_call_seconds",
    "Backend calls: time from first attempt to final answer (retries and waits included).",
    ["backend", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
CALL_RETRIES = Counter(
    "intentbridge_call_retries_total",
    "Backend call attempts beyond the first.",
    ["backend", "operation"],
)
BREAKER_STATE = Gauge(
    "intentbridge_breaker_state",
    "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open.",
    ["backend"],
)
RATE_LIMITED = Counter(
    "intentbridge_rate_limited_total",
    "Calls our own rate limiter refused, by limit scope.",
    ["scope"],
)
TURN_FAILURES = Counter(
    "intentbridge_turn_failures_total",
    "Messages whose handling raised an error; the user got an apology instead.",
)
HTTP_RESPONSES = Counter(
    "intentbridge_http_responses_total",
    "HTTP responses by route template and status class; an unhandled error counts as 5xx.",
    ["route", "status_class"],
)
HTTP_EXCEPTIONS = Counter(
    "intentbridge_http_exceptions_total",
    "HTTP requests whose handling raised an unhandled exception, by route template.",
    ["route"],
)

UNMATCHED_ROUTE = "unmatched"
"""The ``route`` label of a request no route serves (a 404 or a scan)."""

OTHER_INTENT = "other"
"""The ``intent`` label of an intent the project does not know (a made-up payload)."""

_BREAKER_VALUES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def intent_label(intent: str, known: Collection[str]) -> str:
    """``intent`` when the project knows it, else ``"other"``.

    A button payload (``/anything``) can name any intent; labelling by it as typed
    would let one user create unbounded time series.
    """
    return intent if intent in known else OTHER_INTENT


def observe_turn(
    seconds: float, *, intent: str, fallback: bool, confidence: float | None = None
) -> None:
    """Record one handled message; ``confidence`` only when the NLU produced it."""
    TURN_SECONDS.observe(seconds)
    TURNS.labels(intent).inc()
    if fallback:
        FALLBACKS.inc()
    if confidence is not None:
        NLU_CONFIDENCE.observe(confidence)


def observe_call(
    *, backend: str, operation: str, outcome: str, seconds: float, attempts: int
) -> None:
    """Record one finished backend call; attempts beyond the first count as retries."""
    CALL_SECONDS.labels(backend, operation, outcome).observe(seconds)
    if attempts > 1:
        CALL_RETRIES.labels(backend, operation).inc(attempts - 1)


def set_breaker_state(backend: str, state: str) -> None:
    """Publish a breaker's state: ``"closed"``, ``"half_open"`` or ``"open"``."""
    try:
        value = _BREAKER_VALUES[state.lower()]
    except KeyError:
        raise ValueError(
            f"unknown breaker state {state!r}; expected closed, half_open or open"
        ) from None
    BREAKER_STATE.labels(backend).set(value)


def count_rate_limited(scope: str) -> None:
    """Count one call our rate limiter refused under ``scope`` (a backend, a user tier…).

    ``scope`` must come from configuration, never from a user id.
    """
    RATE_LIMITED.labels(scope).inc()


def count_turn_failure() -> None:
    """Count one message whose handling raised (the channel answered with an apology)."""
    TURN_FAILURES.inc()


def count_http_response(route: str, status: int) -> None:
    """Count one HTTP response; ``route`` must be a route template, never a raw path."""
    HTTP_RESPONSES.labels(route, f"{status // 100}xx").inc()


def count_http_exception(route: str) -> None:
    """Count one request that ended in an unhandled exception."""
    HTTP_EXCEPTIONS.labels(route).inc()
