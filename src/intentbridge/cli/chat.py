"""A terminal chat with a bot project, in-process: no server needed.

Buttons are numbered; typing the number sends the button's payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from intentbridge.bot import Bot, BotSettings
from intentbridge.observability.tracing import ensure_tracing
from intentbridge.project import load_project
from intentbridge.types import Message, Reply

QUIT = {"/quit", "/exit", "quit", "exit"}


async def chat_loop(
    project_dir: Path, *, sender: str, store_url: str | None = None, console: Console | None = None
) -> None:
    """Read lines from the terminal and print the bot's replies until EOF or /quit."""
    console = console or Console()
    ensure_tracing()  # $INTENTBRIDGE_TRACING applies to terminal chats too
    project = load_project(project_dir)
    with console.status("Loading the bot (training the NLU if the data changed)…"):
        bot = await Bot.from_project(project, BotSettings(store_url=store_url))
    console.print(
        f"[bold]{escape(project.config.name)}[/bold] — chatting as [cyan]{escape(sender)}"
        "[/cyan]. Type /quit to leave."
    )
    buttons: list[str] = []
    try:
        while True:
            try:
                line = await _read_line(console, "[green]you>[/green] ")
            except EOFError:
                break  # Ctrl-D or the end of piped input: a normal end
            # Ctrl-C is not caught: wherever it lands (here, or in the event loop) the
            # chat ends the same way, "Aborted!" and exit status 1, after closing
            text = line.strip()
            if not text:
                continue
            if text.lower() in QUIT:
                break
            if text.isdigit() and 1 <= int(text) <= len(buttons):
                text = buttons[int(text) - 1]
            replies = await bot.handle(Message(text=text, sender=sender, channel="cli"))
            buttons = _show(console, replies)
    finally:
        await bot.aclose()


async def _read_line(console: Console, prompt: str) -> str:
    """One line from the terminal, read in a daemon thread.

    ``asyncio.to_thread`` would do, but ``asyncio.run`` joins its threads on the way
    out: after Ctrl-C the chat then hung until the user pressed Enter.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(line: str, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(line)

    def read() -> None:
        line, error = "", None
        try:
            line = _input(console, prompt)
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the chat has ended meanwhile
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="chat-input", daemon=True).start()
    return await answer


def _input(console: Console, prompt: str) -> str:
    raw = getattr(getattr(sys.stdin, "buffer", None), "raw", None)
    if sys.stdin.isatty() or raw is None:
        return console.input(prompt)
    # piped input: read unbuffered, so that a thread still waiting here when the chat
    # ends holds no lock that the interpreter needs to shut down
    console.print(prompt, end="")
    data = raw.readline()
    if not data:
        raise EOFError
    return str(data.decode(sys.stdin.encoding or "utf-8", errors="replace")).rstrip("\r\n")


def _show(console: Console, replies: list[Reply]) -> list[str]:
    payloads: list[str] = []
    for reply in replies:
        console.print(f"[bold blue]bot>[/bold blue] {escape(reply.text)}")
        for button in reply.buttons:
            payloads.append(button.payload)
            console.print(f"     [{len(payloads)}] {escape(button.title)}")
    return payloads
