"""Audit records and logs: conversation and trace ids in, secrets out."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from intentbridge.cli.main import app as cli
from intentbridge.project import BotProject
from intentbridge.testing.bot import BotClient, serve_bot

from .conftest import CLIENT_SECRET, Logs, RecordingApp


def turn_trace_ids(spans: InMemorySpanExporter) -> list[str]:
    return [
        f"{s.context.trace_id:032x}"
        for s in spans.get_finished_spans()
        if s.name == "intentbridge.turn" and s.context is not None
    ]


def test_audit_cli_prints_records_with_trace_ids(
    bot: BotClient, spans: InMemorySpanExporter, project_dir: Path, store_url: str
) -> None:
    """``intentbridge audit PROJECT --json``: each call with its outcome and trace id."""
    assert "balance is" in bot.say("what's my balance?", sender="alice")
    [trace_id] = turn_trace_ids(spans)

    result = CliRunner().invoke(
        cli,
        ["audit", str(project_dir), "--json", "--store", store_url, "--limit", "1"],
    )
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert record["conversation_id"] == "rest:alice"
    assert record["operation"] == "check_balance"
    assert record["outcome"] == "ok" and record["status_code"] == 200
    assert record["latency_ms"] > 0
    assert "idempotency_key" in record
    assert record["trace_id"] == trace_id


def test_logs_carry_ids_and_never_secrets(
    project: BotProject,
    tmp_path: Path,
    spans: InMemorySpanExporter,
    logs: Logs,
    bank: tuple[str, RecordingApp],
) -> None:
    """A fresh bot (so the OAuth token is fetched now): logs name the conversation and
    trace of every turn and attempt; the client secret and the token appear nowhere."""
    _, recorder = bank
    recorder.seen.clear()
    sender = "bob"  # bob's money moves here; alice's balances stay as other tests expect
    with serve_bot(project, f"sqlite:///{tmp_path / 'bot.sqlite3'}") as fresh:
        assert "balance is" in fresh.say("what's my balance?", sender=sender)
        assert "?" in fresh.say("move 5 euros from checking to savings", sender=sender)
        assert "Done" in fresh.say("yes", sender=sender)

    logged = logs.events()
    trace_ids = turn_trace_ids(spans)
    turns = [e for e in logged if e["event"] == "turn"]
    assert [e["trace_id"] for e in turns] == trace_ids
    assert {e["conversation_id"] for e in turns} == {f"rest:{sender}"}

    attempts = [e for e in logged if e["event"] == "call_attempt"]
    assert {e["operation"] for e in attempts} >= {"check_balance", "transfer_money"}
    for event in attempts:
        assert event["conversation_id"] == f"rest:{sender}"
        assert event["trace_id"] in trace_ids
        assert event["status"] in (200, 201) and event["outcome"] == "ok"
        assert event["attempt"] == 1 and event["latency_ms"] > 0
    [transfer] = [e for e in attempts if e["operation"] == "transfer_money"]
    assert transfer["method"] == "POST" and transfer["idempotency_key"]

    # What must never be written: the client secret (plain, and as the Basic
    # credentials the token request may carry) and the access token the bank issued.
    assert any(s.path == "/oauth/token" for s in recorder.seen), "no token fetched"
    tokens = {
        s.headers["authorization"].removeprefix("Bearer ")
        for s in recorder.api_requests()
        if "authorization" in s.headers
    }
    assert tokens
    basic = base64.b64encode(f"intentbridge-demo:{CLIENT_SECRET}".encode()).decode()
    written = logs.text
    span_text = "".join(s.to_json() for s in spans.get_finished_spans())
    for secret in (CLIENT_SECRET, basic, *tokens):
        assert secret not in written
        assert secret not in span_text
