"""The ``intentbridge`` command: init, train, run, chat, demo, nlu.

>>> intentbridge init my-bot && intentbridge chat my-bot
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from intentbridge.cli.nlu import app as nlu_app
from intentbridge.cli.nlu import os_reason
from intentbridge.errors import IntentbridgeError

app = typer.Typer(
    name="intentbridge",
    help="Connect chatbots to the systems behind them.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(nlu_app, name="nlu", help="Train, evaluate and convert NLU models.")
T = TypeVar("T")
console = Console()
err = Console(stderr=True)

_LOG_LEVELS = ["critical", "error", "warning", "info", "debug", "trace"]


def _log_level(value: str) -> str:
    if value.lower() not in _LOG_LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_LOG_LEVELS)}")
    return value.lower()


ProjectArg = Annotated[Path, typer.Argument(help="bot project folder (holds bot.yaml)")]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder to create")],
    force: Annotated[bool, typer.Option(help="write into an existing, non-empty folder")] = False,
) -> None:
    """Create a new bot project with a bot.yaml and training data to start from."""
    shown = escape(str(directory))
    if directory.exists() and not directory.is_dir():
        err.print(f"[red]{shown} is a file[/red]; choose a folder to create")
        raise typer.Exit(1)
    if directory.exists() and any(directory.iterdir()) and not force:
        err.print(f"[red]{shown} is not empty[/red]; choose another folder or pass --force")
        raise typer.Exit(1)
    template = resources.files("intentbridge.cli") / "templates" / "project"
    try:
        with resources.as_file(template) as source:
            shutil.copytree(source, directory, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        err.print(f"[red]error:[/red] cannot create {shown}: {escape(os_reason(exc))}")
        raise typer.Exit(2) from None
    typed = escape(shlex.quote(str(directory)))  # a command the user can paste as it is
    console.print(f"Created [bold]{shown}[/bold]. Next:")
    console.print(f"  intentbridge chat {typed}    # talk to it in the terminal", soft_wrap=True)
    console.print(f"  intentbridge run {typed}     # serve the REST channel", soft_wrap=True)


@app.command()
def train(project: ProjectArg) -> None:
    """Train the project's NLU model from its training data."""
    from intentbridge.project import load_project
    from intentbridge.project.model import train_project

    loaded = _guard(lambda: load_project(project))
    model = _guard(lambda: train_project(loaded))
    console.print(
        f"Trained {len(model.classes)} intents ({escape(model.pipeline)} pipeline) into "
        f"{escape(str(loaded.model_dir))}"
    )


@app.command()
def run(
    project: ProjectArg,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="PORT", min=0, max=65535, help="port to listen on")
    ] = 8000,
    store: Annotated[
        str | None, typer.Option(help="store URL (sqlite:///… postgresql://…)")
    ] = None,
    log_level: Annotated[
        str, typer.Option(callback=_log_level, help=f"uvicorn log level: {', '.join(_LOG_LEVELS)}")
    ] = "info",
) -> None:
    """Serve the bot: REST channel, /health, /ready, /metrics."""
    import uvicorn

    from intentbridge.bot import BotSettings
    from intentbridge.observability.logging import configure_logging
    from intentbridge.project import load_project
    from intentbridge.server.app import create_app

    configure_logging()
    loaded = _guard(lambda: load_project(project))
    api = create_app(loaded, BotSettings(store_url=store))
    uvicorn.run(api, host=host, port=port, log_level=log_level)


@app.command()
def chat(
    project: ProjectArg,
    sender: Annotated[str, typer.Option(help="who you are (demo identity)")] = "alice",
    store: Annotated[str | None, typer.Option(help="store URL")] = None,
) -> None:
    """Chat with the bot in the terminal (no server needed)."""
    from intentbridge.cli.chat import chat_loop
    from intentbridge.observability.logging import LEVEL_ENV, configure_logging

    if not os.environ.get(LEVEL_ENV):
        # a log line per turn between "you>" and "bot>" is noise in a terminal chat;
        # warnings and errors still show, and INTENTBRIDGE_LOG_LEVEL=info brings it back.
        # Not cached: whatever runs in this process after the chat (a test driving the
        # CLI) gets the logging it sets up, not this quieter one.
        configure_logging(level=logging.WARNING, cache=False)
    _guard(lambda: asyncio.run(chat_loop(project, sender=sender, store_url=store)))


@app.command()
def demo(
    port: Annotated[int, typer.Option(envvar="PORT", help="bot port")] = 8000,
    bank_port: Annotated[int, typer.Option(envvar="BANK_PORT", help="sample bank port")] = 8001,
    project: Annotated[
        Path | None, typer.Option(help="banking example folder (found automatically)")
    ] = None,
) -> None:
    """Start the sample bank and the banking bot on 127.0.0.1 and chat over REST."""
    from intentbridge.cli.demo import run_demo

    _guard(lambda: run_demo(port=port, bank_port=bank_port, project=project))


@app.command("test")
def conversation_tests(
    project: ProjectArg,
    name: Annotated[str | None, typer.Option("-k", help="only tests whose name has this")] = None,
) -> None:
    """Run the project's conversation tests (tests/*.yml) against its backends."""
    from intentbridge.cli.conversation_tests import run_conversation_tests

    failed = _guard(lambda: asyncio.run(run_conversation_tests(project, name_filter=name)))
    raise typer.Exit(1 if failed else 0)


@app.command()
def audit(
    project: ProjectArg,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array on stdout")] = False,
    conversation: Annotated[str | None, typer.Option(help="only this conversation id")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many records, newest first")] = 50,
    store: Annotated[str | None, typer.Option(help="store URL")] = None,
) -> None:
    """Print the audit trail: every backend call with its outcome, newest first."""
    from intentbridge.cli.audit import print_audit

    _guard(
        lambda: asyncio.run(
            print_audit(
                project, as_json=as_json, conversation=conversation, limit=limit, store_url=store
            )
        )
    )


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; our own errors become one clear line and exit status 2."""
    try:
        return action()
    except IntentbridgeError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.callback()
def _setup() -> None:
    # logs go to stderr, so that stdout carries only what a command prints (--json)
    from intentbridge.observability.logging import configure_logging

    configure_logging()


def main() -> None:
    """Entry point of the ``intentbridge`` script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
