"""``intentbridge demo``: the sample bank and the banking bot, both on 127.0.0.1.

The bank runs as its own process (it stands in for a separate system); the bot reaches
it through ``COREBANK_URL``, so the bank can be put behind a proxy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

import intentbridge
from intentbridge.bot import BotSettings
from intentbridge.errors import IntentbridgeError
from intentbridge.observability.logging import configure_logging
from intentbridge.project import load_project
from intentbridge.server.app import create_app

console = Console()


def find_banking_example(explicit: Path | None = None) -> Path:
    """The examples/banking folder: given, under the current folder, or in the checkout."""
    candidates = [explicit] if explicit else []
    candidates += [
        Path.cwd() / "examples" / "banking",
        Path.cwd(),
        Path(intentbridge.__file__).resolve().parents[2] / "examples" / "banking",
    ]
    for path in candidates:
        if path is not None and (path / "bot.yaml").exists() and (path / "corebank").is_dir():
            return path
    raise IntentbridgeError(
        "cannot find the banking example (a folder with bot.yaml and corebank/); "
        "run from the intentbridge checkout or pass --project examples/banking"
    )


def run_demo(*, port: int, bank_port: int, project: Path | None) -> None:
    folder = find_banking_example(project)
    # Checked before starting anything: a sample bank left on the port by an earlier
    # demo answers /health too, and the bot would then talk to it, with other secrets.
    _require_free(bank_port, "sample bank", "--bank-port or BANK_PORT")
    _require_free(port, "banking bot", "--port or PORT")
    env = dict(os.environ, BANK_PORT=str(bank_port))
    env.setdefault("BANK_LOG_LEVEL", "warning")
    # a quiet terminal for people trying the demo; INTENTBRIDGE_LOG_LEVEL=info shows turns
    os.environ.setdefault("INTENTBRIDGE_LOG_LEVEL", "warning")
    env.setdefault("BANK_DB", str(folder / ".corebank.sqlite3"))
    # the bank tells the bot about incoming payments through a signed webhook
    env.setdefault("BANK_WEBHOOK_URL", f"http://127.0.0.1:{port}/webhooks/in/corebank")
    bank_url = f"http://127.0.0.1:{bank_port}"
    os.environ.setdefault("COREBANK_URL", bank_url)
    bank = subprocess.Popen([sys.executable, "-m", "corebank"], cwd=folder, env=env)
    try:
        _wait_healthy(bank_url, bank)
        configure_logging()
        app = create_app(load_project(folder), BotSettings())
        console.print(
            f"[bold]Sample bank[/bold] on {bank_url}  ·  [bold]banking bot[/bold] on "
            f"http://127.0.0.1:{port}\nTry:\n"
            f"  curl -s localhost:{port}/webhooks/rest/webhook -H 'content-type: "
            'application/json\' \\\n    -d \'{"sender": "alice", "message": "what is my '
            "balance?\"}'\n"
            f"  or, in another terminal:  .venv/bin/intentbridge chat {folder} --sender alice",
            soft_wrap=True,  # a command split over lines cannot be copied and pasted
        )
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        bank.terminate()
        try:
            bank.wait(timeout=5)
        except subprocess.TimeoutExpired:
            bank.kill()


def _require_free(port: int, what: str, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Bind as uvicorn does, with SO_REUSEADDR: the connections of a demo stopped a
        # moment ago linger in TIME-WAIT for a minute and do not keep a server from
        # listening, so they must not stop a restart either; only a listener counts.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise IntentbridgeError(
                f"port {port} for the {what} is in use ({exc.strerror}); stop what holds "
                f"it (an earlier demo?) or choose another with {setting}"
            ) from exc


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise IntentbridgeError(
                f"the sample bank exited with status {process.returncode}; is port "
                f"{url.rsplit(':', 1)[1]} free? (set BANK_PORT to use another)"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise IntentbridgeError(f"the sample bank did not answer on {url} within {timeout:g}s")
