"""The CLI as a careless user drives it: wrong paths, wrong options, Ctrl-C, bad files.

Every failure is one clear line of ours and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentbridge.cli.main import app


def said(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "bot")])
    assert result.exit_code == 0, result.output
    return tmp_path / "bot"


def test_init_onto_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("mine")
    result = CliRunner().invoke(app, ["init", str(tmp_path / "notes")])
    assert result.exit_code == 1
    assert "is a file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (tmp_path / "notes").read_text() == "mine"


def test_init_where_no_folder_can_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("mine")
    result = CliRunner().invoke(app, ["init", str(tmp_path / "notes" / "bot")])
    assert result.exit_code == 2
    assert "cannot create" in said(result.output)
    assert isinstance(result.exception, SystemExit)


def test_init_prints_next_commands_that_can_be_pasted(tmp_path: Path) -> None:
    """A folder name with spaces and brackets is shown as typed, and quoted for the shell."""
    target = tmp_path / "my [bold]bots[/bold] ü"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert f"intentbridge chat {shlex.quote(str(target))}" in result.output
    assert (target / "bot.yaml").is_file()


def test_train_says_what_it_trained(project: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(project)])
    assert result.exit_code == 0, result.output
    assert "object at 0x" not in result.output
    assert "intents" in result.output


def test_a_non_utf8_bot_yaml_names_file_and_line(project: Path) -> None:
    config = project / "bot.yaml"
    config.write_bytes(config.read_bytes().replace(b"name: my-bot", b"name: caf\xe9"))
    result = CliRunner().invoke(app, ["train", str(project)])
    assert result.exit_code == 2
    assert "bot.yaml:3: not UTF-8" in said(result.output)
    assert isinstance(result.exception, SystemExit)


def test_a_folder_named_bot_yaml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bot.yaml").mkdir()
    result = CliRunner().invoke(app, ["chat", str(tmp_path)], input="hi\n")
    assert result.exit_code == 2
    assert "cannot read" in said(result.output)
    assert isinstance(result.exception, SystemExit)


def test_an_alias_bomb_in_bot_yaml_fails_fast(project: Path) -> None:
    rows = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    (project / "bot.yaml").write_text("\n".join(rows) + "\n")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["train", str(project)])
    assert result.exit_code == 2
    assert "aliases" in said(result.output)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "arguments",
    [["run", "--port", "99999"], ["run", "--log-level", "loud"], ["audit", "--limit", "-1"]],
)
def test_out_of_range_options_are_usage_errors(project: Path, arguments: list[str]) -> None:
    command, *options = arguments
    result = CliRunner().invoke(app, [command, str(project), *options])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in said(result.output)
    assert isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_chat_stops_on_ctrl_c_while_waiting_for_input(project: Path, tmp_path: Path) -> None:
    """Ctrl-C at the prompt ends the chat at once; it used to wait for one more line."""
    chat = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from intentbridge.cli.main import main; main()",
            "chat",
            str(project),
            "--store",
            f"sqlite:///{tmp_path / 'store.sqlite3'}",
        ],
        stdin=subprocess.PIPE,  # kept open: the chat waits for a line
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, INTENTBRIDGE_LOG_LEVEL="warning"),
    )
    try:
        shown = b""
        deadline = time.monotonic() + 60
        while b"you>" not in shown:
            assert chat.poll() is None and time.monotonic() < deadline, shown
            shown += chat.stdout.read1(4096)  # type: ignore[union-attr]
        chat.send_signal(signal.SIGINT)
        out, err = chat.communicate(timeout=10)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.communicate()
    assert chat.returncode != 0
    assert b"Traceback" not in out + err
    assert b"Fatal Python error" not in err
