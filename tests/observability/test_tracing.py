"""OpenTelemetry: one trace per turn, and the W3C ``traceparent`` each backend receives."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator, Sequence

import pytest
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from intentbridge.errors import ConfigError, MissingExtraError
from intentbridge.integration import Integrations, RecordingHook
from intentbridge.observability.tracing import (
    TRACING_ENV,
    configure_tracing,
    current_trace_id,
    shutdown_tracing,
    span,
    tracing_enabled,
)
from intentbridge.project.schema import BotConfig
from intentbridge.testing import LoopbackServer
from intentbridge.testing.bot import BotClient

from .conftest import RecordingApp


def traceparent(s: ReadableSpan) -> str:
    """The header a backend should receive from inside span ``s``."""
    assert s.context is not None
    return f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-{s.context.trace_flags:02x}"


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_id(s: ReadableSpan) -> int | None:
    return s.parent.span_id if s.parent is not None else None


def span_id(s: ReadableSpan) -> int:
    assert s.context is not None
    return s.context.span_id


def test_turn_is_one_trace_down_to_the_backend(
    bot: BotClient, spans: InMemorySpanExporter, recorder: RecordingApp
) -> None:
    """turn → understanding, dialogue → call attempt; the bank sees the attempt's id."""
    assert "1,250.50" in bot.say("what's my balance?", sender="alice")
    finished = spans.get_finished_spans()
    [turn] = named(finished, "intentbridge.turn")
    [understanding] = named(finished, "intentbridge.understanding")
    [dialogue] = named(finished, "intentbridge.dialogue")
    [attempt] = [s for s in finished if s.kind is SpanKind.CLIENT]

    assert {s.context.trace_id for s in finished if s.context} == {turn.context.trace_id}
    assert turn.parent is None
    assert parent_id(understanding) == span_id(turn)
    assert parent_id(dialogue) == span_id(turn)
    assert parent_id(attempt) == span_id(dialogue)

    assert understanding.attributes is not None
    assert understanding.attributes["intentbridge.intent"] == "check_balance"
    assert attempt.name == "GET check_balance"
    assert attempt.attributes is not None
    assert attempt.attributes["intentbridge.backend"] == "corebank"
    assert attempt.attributes["intentbridge.attempt"] == 1
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["intentbridge.outcome"] == "ok"

    [received] = recorder.api_requests()
    assert received.headers["traceparent"] == traceparent(attempt)


def test_a_callers_traceparent_is_continued(bot: BotClient, spans: InMemorySpanExporter) -> None:
    """A chat request carrying ``traceparent`` makes the turn a child of the caller's span."""
    trace_id, caller = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = bot.http.post(
        "/webhooks/rest/webhook",
        json={"sender": f"t-{uuid.uuid4().hex[:8]}", "message": "hello"},
        headers={"traceparent": f"00-{trace_id}-{caller}-01"},
    )
    response.raise_for_status()
    [turn] = named(spans.get_finished_spans(), "intentbridge.turn")
    assert turn.context is not None and turn.parent is not None
    assert f"{turn.context.trace_id:032x}" == trace_id
    assert f"{turn.parent.span_id:016x}" == caller


def test_no_traceparent_and_no_trace_ids_while_tracing_is_off(
    bot: BotClient, recorder: RecordingApp
) -> None:
    """Off means off: backends get no ``traceparent``, even when the caller sent one."""
    configure_tracing("none")
    assert not tracing_enabled()
    response = bot.http.post(
        "/webhooks/rest/webhook",
        json={"sender": "alice", "message": "what's my balance?"},
        headers={"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"},
    )
    response.raise_for_status()
    [received] = recorder.api_requests()
    assert "traceparent" not in received.headers
    with span("intentbridge.test") as current:
        assert not current.is_recording()
        assert trace.get_current_span() is trace.INVALID_SPAN  # nothing was attached
        assert current_trace_id() is None
    shutdown_tracing()


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    """A backend that answers with the ``traceparent`` it received."""
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"traceparent": request.headers.get("traceparent")}

    with LoopbackServer(app) as url:
        yield url


async def test_backend_echoes_the_attempt_spans_traceparent(
    echo_url: str, spans: InMemorySpanExporter
) -> None:
    """The header carries the trace id of the enclosing trace and the attempt's span id."""
    config = BotConfig.model_validate(
        {
            "backends": {"echo": {"base_url": echo_url}},
            "operations": {
                "echo": {"backend": "echo", "path": "/echo", "response": {"tp": "traceparent"}}
            },
        }
    )
    records = RecordingHook()
    async with Integrations.from_config(config, hooks=[records]) as integrations:
        with span("intentbridge.test") as outer:
            result = await integrations.execute("echo", {}, conversation_id=None, user_id=None)
    assert result.ok
    [attempt] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert result.data["tp"] == traceparent(attempt)
    assert parent_id(attempt) == outer.get_span_context().span_id
    assert records[-1].trace_id == f"{outer.get_span_context().trace_id:032x}"


def test_console_exporter_prints_finished_spans(capsys: pytest.CaptureFixture[str]) -> None:
    configure_tracing("console", service_name="obs-test")
    try:
        with span("intentbridge.console-check"):
            assert current_trace_id() is not None
    finally:
        shutdown_tracing()  # flushes the batch
    out = capsys.readouterr().out
    assert '"name": "intentbridge.console-check"' in out
    assert "obs-test" in out
    assert not tracing_enabled()


def test_otlp_needs_its_extra() -> None:
    try:
        importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError:
        pass
    else:
        pytest.skip("the OTLP exporter is installed here")
    with pytest.raises(MissingExtraError) as caught:
        configure_tracing("otlp")
    assert caught.value.extra == "otlp"
    assert "intentbridge[otlp]" in str(caught.value)
    assert not tracing_enabled()


def test_unknown_exporter_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRACING_ENV, "zipkin")
    with pytest.raises(ConfigError) as caught:
        configure_tracing()
    assert TRACING_ENV in str(caught.value) and "console" in str(caught.value)
