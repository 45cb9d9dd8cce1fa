"""The HTTP server around a bot: probes, error metrics, and logs that keep the token out."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from intentbridge.bot import BotSettings
from intentbridge.observability.http_metrics import HttpMetricsMiddleware
from intentbridge.project import BotProject, load_project
from intentbridge.server.app import create_app
from intentbridge.testing import LoopbackServer

TOKEN = "s3cr3t-rest-token-XYZ"
WEBHOOK = "/webhooks/rest/webhook"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> BotProject:
    """The project ``intentbridge init`` makes, its API on a port nothing listens on."""
    target = tmp_path_factory.mktemp("bot")
    template = resources.files("intentbridge.cli") / "templates" / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, target, dirs_exist_ok=True)
    return load_project(target, env={"API_URL": "http://127.0.0.1:9"})


def serve(project: BotProject, store: Path, **uvicorn_options: Any) -> LoopbackServer:
    app = create_app(project, BotSettings(store_url=f"sqlite:///{store}"))
    return LoopbackServer(app, **uvicorn_options)


@pytest.fixture(scope="module")
def client(project: BotProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("store") / "bot.sqlite3"
    with serve(project, store) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_probes_answer_head_like_get_without_a_body(client: httpx.Client, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code
    assert head.status_code != 405
    assert head.content == b""


def test_a_bad_query_value_is_a_422_that_does_not_echo_it(client: httpx.Client) -> None:
    response = client.post(
        WEBHOOK, params={"stream": "zqxj-maybe"}, json={"sender": "q1", "message": "hi"}
    )
    assert response.status_code == 422
    assert "zqxj" not in response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "stream"] and set(error) == {"type", "loc", "msg"}


def test_error_responses_are_counted_by_route_and_status_class(client: httpx.Client) -> None:
    """4xx responses count under the route's template; a user's path is no label."""
    before = scrape(client)
    assert client.post(WEBHOOK, content=b'{"sender": "alice", "message":').status_code == 422
    assert client.get("/conversations/alice/outbox", params={"channel": "X!"}).status_code == 422
    assert client.get("/no/such/path/alice").status_code == 404
    assert client.post(WEBHOOK, json={"sender": "alice", "message": "hi"}).status_code == 200
    after = scrape(client)

    name = "intentbridge_http_responses_total"
    assert delta(before, after, name, route=WEBHOOK, status_class="4xx") == 1
    assert delta(before, after, name, route=WEBHOOK, status_class="2xx") == 1
    outbox = "/conversations/{sender}/outbox"
    assert delta(before, after, name, route=outbox, status_class="4xx") == 1
    assert delta(before, after, name, route="unmatched", status_class="4xx") == 1
    assert not any("alice" in str(labels) for _, labels in after)


def test_an_unhandled_exception_counts_as_a_5xx_and_an_exception() -> None:
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware)

    @app.get("/boom/{thing}")
    async def boom(thing: str) -> None:
        raise RuntimeError(f"broken {thing}")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    with LoopbackServer(app) as url:
        # one connection each: uvicorn closes the one a request failed on
        with httpx.Client(base_url=url) as http:
            before = scrape(http)
        with httpx.Client(base_url=url) as http:
            assert http.get("/boom/alice").status_code == 500
        with httpx.Client(base_url=url) as http:
            after = scrape(http)
    route = "/boom/{thing}"
    name = "intentbridge_http_responses_total"
    assert delta(before, after, name, route=route, status_class="5xx") == 1
    assert delta(before, after, "intentbridge_http_exceptions_total", route=route) == 1


def test_the_access_log_never_shows_the_channel_token(
    project: BotProject,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn logs each request target; ``?token=`` values must come out as ``***``."""
    monkeypatch.setenv("INTENTBRIDGE_REST_TOKEN", TOKEN)
    caplog.set_level(logging.INFO)
    body = {"sender": "alice", "message": "hi"}
    server = serve(project, tmp_path / "bot.sqlite3", access_log=True, log_level="info")
    with server as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post(WEBHOOK, params={"token": TOKEN}, json=body).status_code == 200
        assert http.post(WEBHOOK, params={"token": TOKEN + "x"}, json=body).status_code == 401
        assert http.post(f"{WEBHOOK}?%74oken={TOKEN}", json=body).status_code == 200
        assert http.get("/metrics", params={"token": TOKEN, "api_key": TOKEN}).status_code == 200
        assert http.get("/health", params={"password": TOKEN, "sig": TOKEN}).status_code == 200

    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == 5, access
    assert all("=***" in line for line in access)
    captured = capsys.readouterr()
    # every record but the test client's own (httpx logs the URLs it requests)
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(f"{caplog.handler.format(r)} {r.args}" for r in server_records)
    for output in (logged, captured.out, captured.err):
        assert TOKEN not in output
