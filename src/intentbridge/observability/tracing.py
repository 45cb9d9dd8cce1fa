"""OpenTelemetry tracing: one trace per turn, W3C ``traceparent`` to every backend.

A traced turn is the span tree::

    intentbridge.turn                      (conversation id, channel, intent)
    ├── intentbridge.understanding         (intent, confidence, fallback)
    └── intentbridge.dialogue
        ├── GET check_balance              (one CLIENT span per attempt:
        └── POST transfer_money             backend, operation, attempt, status, outcome)

Tracing is off unless configured, and off means off: no spans are started, nothing
is attached to the context and no ``traceparent`` goes to backends, so the hot path
pays one boolean check. (An incoming ``traceparent`` is then ignored too; a trace
that silently continues through a service that does not record it helps nobody.)

Turn it on with the environment, read once when the server starts::

    INTENTBRIDGE_TRACING=console   # spans as JSON on stdout
    INTENTBRIDGE_TRACING=otlp      # OTLP/HTTP; pip install 'intentbridge[otlp]'
    OTEL_SERVICE_NAME=my-bot       # else "intentbridge"

or in code, with any exporter or your application's own ``TracerProvider``:

>>> configure_tracing("console", service_name="banking-bot")
>>> configure_tracing(provider=my_app_provider)
>>> configure_tracing("none")                   # back to off

The standard ``OTEL_*`` variables apply as usual: ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_TRACES_SAMPLER``, ``OTEL_PROPAGATORS`` (W3C trace context by default).

Tests see the spans with :func:`capture_spans`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from opentelemetry.util.types import Attributes

from intentbridge.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:  # the SDK costs ~0.2 s to import: only when tracing is switched on
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "EXPORTERS",
    "SERVICE_NAME",
    "TRACING_ENV",
    "TraceContextMiddleware",
    "capture_spans",
    "configure_tracing",
    "current_trace_id",
    "ensure_tracing",
    "shutdown_tracing",
    "span",
    "trace_headers",
    "tracing_enabled",
]

TRACING_ENV = "INTENTBRIDGE_TRACING"
"""Environment variable naming the exporter: ``none`` (default), ``console``, ``otlp``."""

EXPORTERS = ("none", "console", "otlp")
SERVICE_NAME = "intentbridge"
_INSTRUMENTATION = "intentbridge"
_OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class _State:
    """What is configured; module-level so the server thread and tests share it."""

    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None  # ours to shut down (not a caller's)
    configured: bool = False


_state = _State()
# Handed out when tracing is off: a context manager whose span ignores everything.
_OFF: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)


def tracing_enabled() -> bool:
    """Whether spans are being recorded and trace context is propagated."""
    return _state.tracer is not None


def configure_tracing(
    exporter: str | None = None,
    *,
    service_name: str | None = None,
    span_exporter: SpanExporter | None = None,
    provider: trace.TracerProvider | None = None,
) -> None:
    """Choose where spans go; replaces (and flushes) any earlier configuration.

    ``exporter`` is ``"none"``, ``"console"`` or ``"otlp"`` (default: the
    ``INTENTBRIDGE_TRACING`` variable, else ``"none"``). Instead, pass your own
    ``span_exporter`` (batched) or a whole ``provider`` (used as is, never shut down
    here). ``MissingExtraError`` when OTLP is asked for and its exporter is not
    installed; ``ConfigError`` for an unknown exporter name.
    """
    chosen_provider: trace.TracerProvider | None = provider
    owned: TracerProvider | None = None
    if chosen_provider is None:
        if span_exporter is None:
            span_exporter = _exporter_named(exporter)
        if span_exporter is not None:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            owned = _sdk_provider(service_name)
            owned.add_span_processor(BatchSpanProcessor(span_exporter))
            chosen_provider = owned
    _install(chosen_provider, owned)


def ensure_tracing() -> None:
    """Configure tracing from the environment unless it was configured already.

    The server calls this at start-up, so ``INTENTBRIDGE_TRACING`` works without
    code and an explicit :func:`configure_tracing` (or :func:`capture_spans`) wins.
    """
    if not _state.configured:
        configure_tracing()


def shutdown_tracing() -> None:
    """Flush and stop the exporter configured here, and switch tracing off."""
    _install(None, None)
    _state.configured = False


def _install(provider: trace.TracerProvider | None, owned: TracerProvider | None) -> None:
    previous = _state.provider
    _state.tracer = provider.get_tracer(_INSTRUMENTATION) if provider is not None else None
    _state.provider = owned
    _state.configured = True
    if previous is not None and previous is not owned:
        previous.shutdown()  # flushes spans still queued for export


def _exporter_named(name: str | None) -> SpanExporter | None:
    raw = name if name is not None else os.environ.get(TRACING_ENV, "none")
    chosen = raw.strip().lower() or "none"
    if chosen == "none":
        return None
    if chosen == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stdout as it is now (the exporter's default is bound when OTel is imported)
        return ConsoleSpanExporter(out=sys.stdout)
    if chosen == "otlp":
        try:
            module = importlib.import_module(_OTLP_MODULE)
        except ImportError:
            raise MissingExtraError("OTLP export", "otlp") from None
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    raise ConfigError(
        f"unknown tracing exporter {raw!r}",
        field=TRACING_ENV if name is None else "exporter",
        hint=f"use one of {', '.join(EXPORTERS)}",
    )


def _sdk_provider(service_name: str | None) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    # shutdown_on_exit: spans still in the batch queue are flushed when the process ends.
    return TracerProvider(resource=Resource.create({"service.name": name}))


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Record spans in memory for the block (tests), then restore what was configured.

    >>> with capture_spans() as spans:
    ...     await bot.handle(message)
    >>> [s.name for s in spans.get_finished_spans()]
    ['intentbridge.understanding', 'GET check_balance', 'intentbridge.dialogue', ...]
    """
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    saved = (_state.tracer, _state.provider, _state.configured)
    exporter = InMemorySpanExporter()
    provider = _sdk_provider(None)
    # Synchronous export, so a span is visible the moment it ends.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _state.tracer = provider.get_tracer(_INSTRUMENTATION)
    _state.provider = None  # ours alone; shut down below, not by the next configure
    _state.configured = True
    try:
        yield exporter
    finally:
        _state.tracer, _state.provider, _state.configured = saved
        provider.shutdown()


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
) -> AbstractContextManager[Span]:
    """A context manager making a child span of the current one, current in the block.

    With tracing off it costs one check and yields a span that ignores every call,
    so callers may ``set_attribute`` freely.

    >>> with span("intentbridge.dialogue") as current:
    ...     current.set_attribute("intentbridge.replies", 2)
    """
    tracer = _state.tracer
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside a recorded trace."""
    if _state.tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x")


def trace_headers() -> list[tuple[str, str]]:
    """Headers carrying the current trace context (``traceparent``…); none when off."""
    if _state.tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


# --- incoming trace context -----------------------------------------------------------

_Scope = MutableMapping[str, Any]


class TraceContextMiddleware:
    """ASGI middleware: continue the caller's trace when a request has ``traceparent``.

    Only while tracing is on; otherwise requests pass straight through.

    >>> app.add_middleware(TraceContextMiddleware)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if _state.tracer is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate", b"baggage")
        }
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
