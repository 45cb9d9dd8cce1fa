"""`intentbridge init`, `chat` and `audit` work on a new project, as a newcomer uses them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from intentbridge.cli.main import app
from intentbridge.project import load_project


def test_init_creates_a_valid_project_that_chats(tmp_path: Path) -> None:
    target = tmp_path / "my-bot"
    runner = CliRunner()
    created = runner.invoke(app, ["init", str(target)])
    assert created.exit_code == 0, created.output
    project = load_project(target)
    assert "order_status" in project.config.operations

    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    chat = runner.invoke(
        app,
        ["chat", str(target), "--sender", "sam", "--store", store],
        input="hello\nwhere is my order?\n/quit\n",
    )
    assert chat.exit_code == 0, chat.output
    assert "Hello! Ask me about an order." in chat.output
    assert "What's the order number?" in chat.output
    assert '"event": "turn"' not in chat.output  # no info log line between the turns


def test_chat_is_quiet_unless_asked_to_log(tmp_path: Path) -> None:
    """Real processes: logging is set up once per process, as a user runs the CLI."""
    CliRunner().invoke(app, ["init", str(tmp_path / "bot")])
    cli = [sys.executable, "-c", "from intentbridge.cli.main import main; main()"]
    quiet = {k: v for k, v in os.environ.items() if k != "INTENTBRIDGE_LOG_LEVEL"}

    def chat(store: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, "chat", str(tmp_path / "bot"), "--store", f"sqlite:///{tmp_path / store}"],
            input="hello\n/quit\n",
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=True,
        )

    plain = chat("plain.db", quiet)
    assert "Hello! Ask me about an order." in plain.stdout
    assert '"turn"' not in plain.stdout + plain.stderr
    logged = chat("logged.db", {**quiet, "INTENTBRIDGE_LOG_LEVEL": "info"})
    assert '"turn"' in logged.stderr


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_a_broken_bot_yaml_is_one_clear_line(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["init", str(tmp_path / "bot")])
    config = tmp_path / "bot" / "bot.yaml"
    config.write_text(config.read_text().replace("    method: GET", "    method: FETCH"))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "bot")])
    assert result.exit_code == 2
    assert "bot.yaml:" in result.output and "operations.order_status.method" in result.output
    assert "Traceback" not in result.output


def test_audit_json_lists_backend_calls(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["init", str(tmp_path / "bot")])
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    # the API of the template project is not running: the call fails and is audited
    CliRunner().invoke(
        app,
        ["chat", str(tmp_path / "bot"), "--store", store],
        input="where is my order AB-1234?\n/quit\n",
        env={"API_URL": "http://127.0.0.1:9"},
    )
    result = CliRunner().invoke(app, ["audit", str(tmp_path / "bot"), "--json", "--store", store])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert records and records[0]["operation"] == "order_status"
    assert records[0]["outcome"] == "unavailable"
    assert records[0]["path"] == "/orders/AB-1234"


def test_demo_refuses_a_bank_port_already_in_use() -> None:
    # An earlier demo's bank still on the port answered /health, and the new bot then
    # talked to it: "I couldn't sign in". The demo now stops before starting anything.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--bank-port", str(port), "--port", "0"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert f"port {port} for the sample bank is in use" in said
    assert "--bank-port or BANK_PORT" in said
