"""`intentbridge run` and `demo` as an operator starts them: logs, ports, restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from intentbridge.cli.main import app

TOKEN = "s3cr3t-rest-token-XYZ"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def time_wait_port() -> int:
    """A port whose only sockets are connections in TIME-WAIT, as a stopped demo leaves."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's is
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first, so its end waits in TIME-WAIT
        time.sleep(0.05)
        client.close()
    time.sleep(0.05)
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))  # the check that made the demo refuse to restart
    return port


def test_demo_starts_again_on_a_port_left_in_time_wait(time_wait_port: int) -> None:
    """Only a listener makes a port busy: the bank port passes, the busy bot port stops it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        bot_port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["demo", "--bank-port", str(time_wait_port), "--port", str(bot_port)]
        )
    said = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, result.output
    assert "sample bank" not in said
    assert f"port {bot_port} for the banking bot is in use" in said


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "bot")])
    assert result.exit_code == 0, result.output
    return tmp_path / "bot"


@pytest.mark.slow
def test_run_never_logs_the_channel_token(project: Path, tmp_path: Path) -> None:
    """`intentbridge run` at its default info level: access lines show ``token=***``."""
    port = free_port()
    env = dict(
        os.environ,
        INTENTBRIDGE_REST_TOKEN=TOKEN,
        INTENTBRIDGE_LOG_LEVEL="info",
        API_URL="http://127.0.0.1:9",
    )
    command = [sys.executable, "-c", "from intentbridge.cli.main import main; main()"]
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server = subprocess.Popen(
        [*command, "run", str(project), "--port", str(port), "--store", store],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    body = {"sender": "alice", "message": "hi"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "intentbridge run did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post(f"/webhooks/rest/webhook?token={TOKEN}", json=body).status_code == 200
            assert http.post(f"/webhooks/rest/webhook?token={TOKEN}x", json=body).status_code == 401
            assert http.get(f"/metrics?token={TOKEN}").status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    logs = out.decode() + err.decode()
    assert "/webhooks/rest/webhook?token=***" in logs  # the access log is on, and redacted
    assert "/metrics?token=***" in logs
    assert TOKEN not in logs
