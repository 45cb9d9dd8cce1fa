"""FaultProxy against a real backend on 127.0.0.1: pass-through, each fault, stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from intentbridge.testing.faults import FaultProxy, Faults
from intentbridge.testing.loopback import LoopbackServer

# What the backend saw, as (method, path); the backend runs in another thread.
HITS: list[tuple[str, str]] = []


async def echo(request: Request) -> Response:
    HITS.append((request.method, request.url.path))
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": body.decode(),
        },
        headers={"x-backend": "yes"},
        status_code=int(request.query_params.get("status", "200")),
    )


async def stream(request: Request) -> Response:
    HITS.append((request.method, request.url.path))

    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def no_content(request: Request) -> Response:
    HITS.append((request.method, request.url.path))
    return Response(status_code=204)


async def slow(request: Request) -> Response:
    HITS.append((request.method, request.url.path))
    await asyncio.sleep(0.5)
    return Response("late")


APP = Starlette(
    routes=[
        Route("/stream", stream),
        Route("/empty", no_content, methods=["DELETE"]),
        Route("/sleepy", slow),
        Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
    ]
)


@pytest.fixture(scope="module")
def backend_url() -> Iterator[str]:
    with LoopbackServer(APP) as url:
        yield url


@pytest.fixture(autouse=True)
def _clear_hits() -> None:
    HITS.clear()


async def test_passes_status_headers_body_and_query_through(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults()) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        response = await client.post(
            "/customers/c1/transfers?dry=1&x=%20y",
            json={"amount": 5},
            headers={"x-trace": "t1", "Connection": "keep-alive, x-hop", "x-hop": "no"},
        )
    assert response.status_code == 200
    assert response.headers["x-backend"] == "yes"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/customers/c1/transfers"
    assert seen["query"] == "dry=1&x=%20y"
    assert json.loads(seen["body"]) == {"amount": 5}
    assert seen["headers"]["x-trace"] == "t1"
    assert seen["headers"]["host"] == backend_url.removeprefix("http://")
    assert "x-hop" not in seen["headers"]  # named in Connection: hop-by-hop
    assert HITS == [("POST", "/customers/c1/transfers")]
    assert proxy.stats.forwarded == 1


async def test_passes_error_statuses_streams_and_empty_answers_through(backend_url: str) -> None:
    async with FaultProxy(backend_url) as proxy, httpx.AsyncClient(base_url=proxy.url) as client:
        assert (await client.get("/missing", params={"status": "404"})).status_code == 404
        streamed = await client.get("/stream")
        assert streamed.text == "part0;part1;part2;part3;part4;"
        assert (await client.delete("/empty")).status_code == 204
        head = await client.head("/thing")
        assert head.status_code == 200
        assert head.content == b""


async def test_keeps_one_client_connection_alive_over_many_requests(backend_url: str) -> None:
    async with FaultProxy(backend_url) as proxy:
        # One connection in the pool: every request must reuse the first.
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=proxy.url, limits=limits) as client:
            peers = set()
            for i in range(5):
                response = await client.get(f"/n/{i}")
                assert response.json()["path"] == f"/n/{i}"
                peers.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(peers) == 1
    assert len(HITS) == 5


async def test_chunked_request_body_is_forwarded_whole(backend_url: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            yield part

    async with FaultProxy(backend_url) as proxy, httpx.AsyncClient(base_url=proxy.url) as client:
        response = await client.post("/upload", content=chunks())
    assert response.json()["body"] == "one,two,three"
    assert "transfer-encoding" not in response.json()["headers"]


async def test_error_5xx_answers_503_without_reaching_the_backend(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(error_5xx=1.0)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        first = await client.post("/customers/c1/transfers", json={})
        second = await client.get("/accounts")  # same connection: still usable
    assert first.status_code == second.status_code == 503
    assert first.headers["x-intentbridge-fault"] == "error_5xx"
    assert HITS == []
    assert proxy.stats.error_5xx == 2
    assert proxy.stats.forwarded == 0


async def test_error_status_is_configurable(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(error_5xx=1.0, error_status=500)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        assert (await client.get("/x")).status_code == 500


async def test_rate_limit_answers_429_with_retry_after(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(rate_limit=1.0, retry_after=7)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        response = await client.get("/accounts")
        proxy.set_faults(retry_after=0.25)
        fractional = await client.get("/accounts")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert fractional.headers["retry-after"] == "0.25"
    assert HITS == []
    assert proxy.stats.rate_limited == 2


async def test_lost_response_reaches_the_backend_once_and_the_client_never_hears(
    backend_url: str,
) -> None:
    async with (
        FaultProxy(backend_url, Faults(lose_response=1.0)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post("/customers/c1/transfers", json={"amount": 1})
    assert HITS == [("POST", "/customers/c1/transfers")]
    assert proxy.stats.lost_responses == 1
    assert proxy.stats.forwarded == 1


async def test_reset_breaks_the_connection_before_the_backend_is_reached(
    backend_url: str,
) -> None:
    async with (
        FaultProxy(backend_url, Faults(reset=1.0)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        with pytest.raises(httpx.ReadError):  # ECONNRESET, not a clean end of stream
            await client.post("/customers/c1/transfers", json={"amount": 1})
    assert HITS == []
    assert proxy.stats.resets == 1


async def test_malformed_keeps_the_status_but_garbles_the_body(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(malformed=1.0)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        response = await client.get("/accounts", params={"status": "201"})
        empty = await client.delete("/empty")  # 204: no body to garble, passes as is
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-intentbridge-fault"] == "malformed"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert empty.status_code == 204
    assert HITS == [("GET", "/accounts"), ("DELETE", "/empty")]
    assert proxy.stats.malformed == 1


async def test_latency_delays_each_request_at_least_the_minimum(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(latency=(0.05, 0.06))) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        await client.get("/warm")
        start = time.perf_counter()
        await client.get("/accounts")
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.05
    assert proxy.stats.delayed == 2


async def test_same_seed_gives_the_same_fault_sequence(backend_url: str) -> None:
    faults = Faults(error_5xx=0.2, rate_limit=0.2, malformed=0.2, seed=42)

    async def run() -> list[object]:
        async with (
            FaultProxy(backend_url, faults) as proxy,
            httpx.AsyncClient(base_url=proxy.url) as client,
        ):
            for i in range(30):
                await client.get(f"/r/{i}")
        return list(proxy.stats.faults())

    first, second = await run(), await run()
    assert first == second
    assert {"error_5xx", "rate_limit", "malformed", None} <= set(first)
    other = Faults(error_5xx=0.2, rate_limit=0.2, malformed=0.2, seed=43)
    async with FaultProxy(backend_url, other) as proxy, httpx.AsyncClient() as client:
        for i in range(30):
            await client.get(f"{proxy.url}/r/{i}")
    assert proxy.stats.faults() != first


async def test_filters_fault_only_matching_requests(backend_url: str) -> None:
    faults = Faults(
        error_5xx=1.0,
        methods={"post"},
        path_prefix="/customers/",
        match=lambda method, path: path.endswith("/transfers"),
    )
    async with (
        FaultProxy(backend_url, faults) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        token = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
        listing = await client.get("/customers/c1/transfers")
        other = await client.post("/customers/c1/payees", json={})
        transfer = await client.post("/customers/c1/transfers", json={})
    assert [token.status_code, listing.status_code, other.status_code] == [200, 200, 200]
    assert transfer.status_code == 503
    assert list(proxy.stats.log) == [
        ("POST", "/oauth/token", None),
        ("GET", "/customers/c1/transfers", None),
        ("POST", "/customers/c1/payees", None),
        ("POST", "/customers/c1/transfers", "error_5xx"),
    ]


async def test_faults_change_at_run_time_so_a_backend_can_recover(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, Faults(error_5xx=1.0)) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        assert (await client.get("/a")).status_code == 503
        proxy.faults = Faults()
        assert (await client.get("/a")).status_code == 200
    assert proxy.stats.counts() == {
        "requests": 2,
        "forwarded": 1,
        "error_5xx": 1,
        "rate_limited": 0,
        "lost_responses": 0,
        "resets": 0,
        "malformed": 0,
        "delayed": 0,
        "upstream_errors": 0,
    }
    proxy.stats.clear()
    assert proxy.stats.requests == 0
    assert not proxy.stats.log


async def test_stats_count_each_kind(backend_url: str) -> None:
    faults = Faults(error_5xx=0.2, rate_limit=0.2, reset=0.2, lose_response=0.2, seed=5)
    async with FaultProxy(backend_url, faults) as proxy, httpx.AsyncClient() as client:
        for i in range(40):
            # A reset or lost answer ends the connection; the client opens a new one.
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"{proxy.url}/s/{i}")
    stats = proxy.stats
    kinds = stats.faults()
    assert stats.requests == 40
    assert stats.error_5xx == kinds.count("error_5xx") > 0
    assert stats.rate_limited == kinds.count("rate_limit") > 0
    assert stats.resets == kinds.count("reset") > 0
    assert stats.lost_responses == kinds.count("lose_response") > 0
    assert stats.forwarded == len(HITS) == kinds.count(None) + kinds.count("lose_response")


async def test_upstream_base_path_is_kept(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url + "/api/v1/") as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        response = await client.get("/accounts?x=1")
    assert response.json()["path"] == "/api/v1/accounts"
    assert response.json()["query"] == "x=1"


async def test_expect_100_continue_and_pipelined_requests(backend_url: str) -> None:
    """Raw HTTP/1.1, as clients other than httpx speak it."""
    async with FaultProxy(backend_url) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(
                b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
            )
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 \r\n\r\n"
            writer.write(b"abc" + b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            answers = [await _read_answer(reader) for _ in range(3)]
        finally:
            writer.close()
            await writer.wait_closed()
    assert [json.loads(a)["path"] for a in answers] == ["/e", "/p1", "/p1"]
    assert json.loads(answers[0])["body"] == "abc"


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.startswith(b"content-length")
    )
    return await reader.readexactly(length)


async def test_upstream_timeout_answers_504(backend_url: str) -> None:
    async with (
        FaultProxy(backend_url, timeout=0.1) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        response = await client.get("/sleepy")
        assert (await client.get("/after")).status_code == 200
    assert response.status_code == 504
    assert proxy.stats.upstream_errors == 1


def test_unmatched_requests_draw_no_random_numbers() -> None:
    """Token requests between faulted ones do not shift the seeded sequence."""
    faults = Faults(error_5xx=0.5, path_prefix="/pay", seed=1)
    plain, mixed = faults.new_random(), faults.new_random()
    alone = [faults.roll(plain, "POST", "/pay") for _ in range(20)]
    interleaved = []
    for _ in range(20):
        assert faults.roll(mixed, "POST", "/oauth/token") == (0.0, None)
        interleaved.append(faults.roll(mixed, "POST", "/pay"))
    assert alone == interleaved
    assert isinstance(plain, random.Random)


async def test_unreachable_upstream_answers_502() -> None:
    with LoopbackServer(APP) as url:
        pass  # a port that was just free again
    async with FaultProxy(url) as proxy, httpx.AsyncClient() as client:
        response = await client.get(proxy.url + "/x")
    assert response.status_code == 502
    assert proxy.stats.upstream_errors == 1


@pytest.mark.parametrize(
    "upstream",
    ["http://example.com", "http://10.0.0.1:80", "http://0.0.0.0:80", "ftp://127.0.0.1"],
)
def test_refuses_upstreams_off_this_machine(upstream: str) -> None:
    with pytest.raises(ValueError, match="FaultProxy upstream"):
        FaultProxy(upstream)


def test_refuses_to_listen_off_loopback() -> None:
    with pytest.raises(ValueError, match="host"):
        FaultProxy("http://127.0.0.1:1", host="0.0.0.0")


@pytest.mark.parametrize(
    "bad",
    [
        {"error_5xx": 1.5},
        {"error_5xx": 0.6, "reset": 0.6},
        {"latency": (0.2, 0.1)},
        {"error_status": 404},
    ],
)
def test_rejects_impossible_settings(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"Faults|fault"):
        Faults(**bad)  # type: ignore[arg-type]


def test_runs_in_a_thread_for_synchronous_code(backend_url: str) -> None:
    proxy = FaultProxy(backend_url, Faults(error_5xx=1.0, path_prefix="/fail"))
    with proxy.run_in_thread() as running, httpx.Client(base_url=running.url) as client:
        assert client.get("/ok").status_code == 200
        assert client.get("/fail").status_code == 503
        running.set_faults(error_5xx=0.0)
        assert client.get("/fail").status_code == 200
    assert proxy.stats.requests == 3
    with pytest.raises(RuntimeError, match="not running"):
        _ = proxy.url


async def test_stop_closes_idle_and_busy_client_connections(backend_url: str) -> None:
    proxy = FaultProxy(backend_url, Faults(latency=(5.0, 5.0), path_prefix="/slow"))
    await proxy.start()
    async with httpx.AsyncClient(base_url=proxy.url) as client:
        await client.get("/idle")  # leaves an idle keep-alive connection behind
        slow = asyncio.create_task(client.get("/slow"))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await proxy.stop()
        with pytest.raises(httpx.TransportError):
            await slow
    assert time.perf_counter() - start < 1.0
    assert HITS == [("GET", "/idle")]


async def test_adds_little_overhead_when_no_fault_fires(backend_url: str) -> None:
    """A loose bound that survives busy CI machines; a benchmark measures it properly.

    Batches of direct and proxied requests alternate, and the fastest batch of each
    counts, so a burst of load elsewhere does not fail the test.
    """

    async def per_request(client: httpx.AsyncClient) -> float:
        start = time.perf_counter()
        for _ in range(20):
            await client.get("/fast")
        return (time.perf_counter() - start) / 20

    async with (
        FaultProxy(backend_url) as proxy,
        httpx.AsyncClient(base_url=backend_url) as direct,
        httpx.AsyncClient(base_url=proxy.url) as via,
    ):
        await per_request(direct)
        await per_request(via)
        direct_times, proxied_times = [], []
        for _ in range(5):
            direct_times.append(await per_request(direct))
            proxied_times.append(await per_request(via))
    # Catches what would hurt a benchmark (a Nagle stall, a connection per request,
    # a stray sleep) with room for a machine where every request is slow.
    assert min(proxied_times) < 2 * min(direct_times) + 0.005
