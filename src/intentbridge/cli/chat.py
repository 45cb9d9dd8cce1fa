"""A terminal chat with a bot project, in-process: no server needed.

Buttons are numbered; typing the number sends the button's payload.
"""

from __future__ import annotations

import asyncio
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
                line = await asyncio.to_thread(console.input, "[green]you>[/green] ")
            except (EOFError, KeyboardInterrupt):
                break
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


def _show(console: Console, replies: list[Reply]) -> list[str]:
    payloads: list[str] = []
    for reply in replies:
        console.print(f"[bold blue]bot>[/bold blue] {escape(reply.text)}")
        for button in reply.buttons:
            payloads.append(button.payload)
            console.print(f"     [{len(payloads)}] {escape(button.title)}")
    return payloads
