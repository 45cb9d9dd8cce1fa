"""Run a bot project over real HTTP on loopback and talk to it like a chat widget.

>>> with serve_bot(load_project("my-bot"), "sqlite:///tmp/store.sqlite3") as bot:
...     assert "balance" in bot.say("what's my balance?")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from intentbridge.bot import BotSettings
from intentbridge.project import BotProject
from intentbridge.server.app import create_app
from intentbridge.testing.loopback import LoopbackServer


class BotClient:
    """A REST-channel client for a served bot."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=timeout)

    def send(self, text: str, sender: str = "alice", **extra: Any) -> list[dict[str, Any]]:
        """Post one message; the bot's replies as the channel returns them."""
        response = self.http.post(
            "/webhooks/rest/webhook", json={"sender": sender, "message": text, **extra}
        )
        response.raise_for_status()
        replies: list[dict[str, Any]] = response.json()
        return replies

    def say(self, text: str, sender: str = "alice") -> str:
        """The texts of the bot's replies to ``text``, one a line."""
        return "\n".join(r["text"] for r in self.send(text, sender))

    def close(self) -> None:
        self.http.close()


@contextmanager
def serve_bot(
    project: BotProject, store_url: str, settings: BotSettings | None = None
) -> Iterator[BotClient]:
    """Serve ``project`` on 127.0.0.1 with its store at ``store_url``."""
    app = create_app(project, dataclasses.replace(settings or BotSettings(), store_url=store_url))
    with LoopbackServer(app) as url:
        client = BotClient(url)
        try:
            yield client
        finally:
            client.close()
