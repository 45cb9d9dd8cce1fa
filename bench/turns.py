"""End-to-end turn latency and throughput of the REST channel, beside the bank itself.

Starts the sample bank and the banking bot as separate processes on 127.0.0.1 (one
bot worker, our own rate limits off), then measures in one run:

- "what's my balance?" through the bot (REST → NLU → dialogue → OAuth2 → bank → reply)
  and the same lookup sent straight to the bank, at concurrency 1 and 20 (wrk);
- middleware overhead per call: ``Integrations.execute`` against a raw httpx call;
- bot RSS, cold start to ``/ready``;
- turn latency early in a conversation against after many turns (state must not grow).

    .venv/bin/python bench/turns.py [--duration 10] [--long-turns 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BANKING = ROOT / "examples" / "banking"
PY = sys.executable
CLI = str(Path(PY).with_name("intentbridge"))
CUSTOMERS = 50
CLIENT = ("intentbridge-demo", "demo-secret")

WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %f %d %d\\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99), summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.requests))
end
"""

WRK_SCRIPT = (
    """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"sender": "user%04d", "message": "what\\'s my balance?"}',
                             (counter % CUSTOMERS) + 1)
  return wrk.format("POST", "/webhooks/rest/webhook", {["Content-Type"] = "application/json"}, body)
end
"""
    + WRK_DONE
)

WRK_GET_SCRIPT = WRK_DONE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"{url} not ready after {timeout}s")


@contextmanager
def process(cmd: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pids: dict[str, int], run: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
    """``run(*args)`` (a wrk run) plus each process's CPU milliseconds per request."""
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    result: dict[str, float] = run(*args, **kwargs)
    for name, pid in pids.items():
        used = cpu_s(pid) - before[name]
        result[f"{name}_cpu_ms"] = used * 1000 / max(result["requests"], 1)
    return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(
    url: str, script: str, connections: int, duration: int, headers: list[str] | None = None
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = [
        "wrk",
        "-t",
        "1",  # one thread: on 2 cores a second one takes CPU from the server measured
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "-s",
        f.name,
    ]
    for h in headers or []:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    p50, p95, p99, rps, errors, total = (float(v) for v in line.split()[1:])
    return {
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "p99": p99 / 1000,
        "rps": rps,
        "errors": errors,
        "requests": total,
    }


async def middleware_overhead(bank_url: str, n: int) -> dict[str, float]:
    """p50 of Integrations.execute minus p50 of the same GET with a raw httpx client."""
    from intentbridge.integration import Integrations
    from intentbridge.integration.transport import default_transport
    from intentbridge.observability.logging import configure_logging
    from intentbridge.project import load_project

    configure_logging(level=logging.WARNING)  # as the served bot runs in the benchmark
    os.environ["INTENTBRIDGE_RATE_LIMITS"] = "off"  # the demo's bank quota would pace us

    project = load_project(BANKING, env={**os.environ, "COREBANK_URL": bank_url})
    async with httpx.AsyncClient() as plain:
        response = await plain.post(
            f"{bank_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
        )
    token = response.json()["access_token"]
    raw_times: list[float] = []
    ours: list[float] = []
    # the raw client goes over the same wire as ours (aiohttp under httpx), so the
    # difference is the middleware, not the transport
    async with (
        httpx.AsyncClient(
            base_url=bank_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=default_transport(verify=False, max_connections=10),
        ) as raw,
        Integrations.from_config(project.config) as integrations,
    ):
        for i in range(n + 200):
            t = time.perf_counter()
            r = await raw.get("/customers/alice/accounts")
            r.json()
            a = time.perf_counter() - t
            t = time.perf_counter()
            res = await integrations.execute(
                "list_accounts", {"customer": "alice"}, conversation_id="bench", user_id="alice"
            )
            b = time.perf_counter() - t
            assert res.ok, res.error
            if i >= 200:  # warm-up
                raw_times.append(a)
                ours.append(b)
    raw_p50 = statistics.median(raw_times) * 1000
    ours_p50 = statistics.median(ours) * 1000
    return {"raw_p50": raw_p50, "ours_p50": ours_p50, "overhead": ours_p50 - raw_p50}


def stage_costs(bank_url: str, env: dict[str, str], n: int) -> dict[str, float]:
    """CPU ms per call of each part of a balance turn, measured in this process.

    Where a turn's time goes: each part runs ``n`` times on its own (after a warm-up)
    and ``time.thread_time`` says how much CPU it used. The bank runs in its own
    process, so its work is not counted; waiting for it is not CPU.
    """
    import uvloop

    from intentbridge.bot import Bot, BotSettings
    from intentbridge.integration.transport import TRANSPORT_ENV
    from intentbridge.project import load_project
    from intentbridge.types import Call, Message

    def per_call(seconds: float) -> float:
        return seconds * 1000 / n

    async def cost(step: Any) -> float:
        for _ in range(min(n, 200)):
            await step()
        started = time.thread_time()
        for _ in range(n):
            await step()
        return per_call(time.thread_time() - started)

    async def measure() -> dict[str, float]:
        work = Path(tempfile.mkdtemp(prefix="ib-stages-"))
        project = load_project(BANKING, env={**env, "COREBANK_URL": bank_url})
        bot = await Bot.from_project(project, BotSettings(store_url=f"sqlite:///{work}/s.db"))
        out: dict[str, float] = {}
        try:
            message = Message(text="what's my balance?", sender="user0002")
            out["turn (Bot.handle)"] = await cost(lambda: bot.handle(message))
            out["understanding (NLU parse)"] = await cost(
                lambda: bot.interpreter.interpret(message.text)
            )
            out["operation (middleware + call + audit)"] = await cost(
                lambda: bot.integrations.execute(
                    "check_balance",
                    {"customer": "user0002"},
                    conversation_id="rest:user0002",
                    user_id="user0002",
                )
            )
            client = bot.integrations.clients["corebank"]
            call = Call(
                backend="corebank",
                operation="check_balance",
                method="GET",
                path="/customers/user0002/accounts",
            )
            out["HTTP call (httpx over aiohttp)"] = await cost(lambda: client.send(call))

            async def store_round_trip() -> None:
                raw = await bot.store.load_conversation("rest:user0002")
                await bot.store.save_conversation("rest:user0002", raw or {})

            out["store: load + save conversation"] = await cost(store_round_trip)
        finally:
            await bot.aclose()
            shutil.rmtree(work, ignore_errors=True)
        return out

    previous = os.environ.get(TRANSPORT_ENV)
    results = uvloop.run(measure())
    os.environ[TRANSPORT_ENV] = "httpx"
    try:
        with_httpcore = uvloop.run(measure())
    finally:
        if previous is None:
            os.environ.pop(TRANSPORT_ENV, None)
        else:
            os.environ[TRANSPORT_ENV] = previous
    results["HTTP call (httpx's own transport, for comparison)"] = with_httpcore[
        "HTTP call (httpx over aiohttp)"
    ]
    return results


def long_conversation(bot_url: str, turns: int) -> dict[str, float]:
    """Turn latency at the start of a conversation and after ``turns`` turns."""
    samples: list[float] = []
    with httpx.Client(base_url=bot_url, timeout=10) as client:
        for _ in range(turns):
            t = time.perf_counter()
            r = client.post(
                "/webhooks/rest/webhook",
                json={"sender": "user0001", "message": "what's my balance?"},
            )
            samples.append(time.perf_counter() - t)
            r.raise_for_status()
    first = statistics.median(samples[:10]) * 1000
    last = statistics.median(samples[-10:]) * 1000
    tail = statistics.median(samples[-200:]) * 1000
    return {"first10_p50": first, "last10_p50": last, "last200_p50": tail}


def run(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install {tool} (make bench does it)")
    work = Path(tempfile.mkdtemp(prefix="ib-bench-"))
    bank_port, bot_port = free_port(), free_port()
    bank_url, bot_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{bot_port}"
    env = {
        **os.environ,
        "BANK_PORT": str(bank_port),
        "BANK_DB": str(work / "bank.sqlite3"),
        "BANK_CUSTOMERS": str(CUSTOMERS),
        "COREBANK_URL": bank_url,
        "INTENTBRIDGE_RATE_LIMITS": "off",
        "BANK_LOG_LEVEL": "warning",
        "INTENTBRIDGE_STORE": f"sqlite:///{work / 'bot.sqlite3'}",
        "PORT": str(bot_port),
    }
    # train once so that cold start measures a start, not a training run
    subprocess.run([CLI, "train", str(BANKING)], env=env, check=True, capture_output=True)
    results: dict[str, Any] = {}
    with process([PY, "-m", "corebank"], env, BANKING) as bank:
        wait_ready(f"{bank_url}/health", bank)
        bot_cmd = [CLI, "run", str(BANKING), "--port", str(bot_port), "--log-level", "warning"]
        with process(bot_cmd, {**env, "INTENTBRIDGE_LOG_LEVEL": "warning"}, ROOT) as bot:
            results["cold_start_s"] = wait_ready(f"{bot_url}/ready", bot)
            token = httpx.post(
                f"{bank_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
            ).json()["access_token"]
            auth = [f"Authorization: Bearer {token}"]
            direct_url = f"{bank_url}/customers/user0001/accounts"
            bot_script = WRK_SCRIPT.replace("CUSTOMERS", str(CUSTOMERS))
            wrk(f"{bot_url}", bot_script, 1, 2)  # warm-up
            pids = {"bot": bot.pid, "bank": bank.pid}
            for c in (1, 20):
                results[f"direct_c{c}"] = measured(
                    pids, wrk, direct_url, WRK_GET_SCRIPT, c, args.duration, auth
                )
                results[f"bot_c{c}"] = measured(pids, wrk, bot_url, bot_script, c, args.duration)
            results["bot_rss_mb"] = rss_mb(bot.pid)
            results["long"] = long_conversation(bot_url, args.long_turns)
            results["bot_rss_after_mb"] = rss_mb(bot.pid)
        results["middleware"] = asyncio.run(middleware_overhead(bank_url, args.calls))
        results["stages"] = stage_costs(bank_url, env, args.calls)
    shutil.rmtree(work, ignore_errors=True)
    return results


def table(r: dict[str, Any]) -> str:
    d1, b1, d20, b20 = r["direct_c1"], r["bot_c1"], r["direct_c20"], r["bot_c20"]
    m, long = r["middleware"], r["long"]
    rows = [
        ("", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "bot CPU ms/req", "bank CPU ms/req"),
        *[
            (
                name,
                f"{x['p50']:.2f}",
                f"{x['p95']:.2f}",
                f"{x['p99']:.2f}",
                f"{x['rps']:.0f}",
                f"{x['errors']:.0f}",
                f"{x['bot_cpu_ms']:.3f}",
                f"{x['bank_cpu_ms']:.3f}",
            )
            for name, x in (
                ("bank direct, c=1", d1),
                ("bot turn, c=1", b1),
                ("bank direct, c=20", d20),
                ("bot turn, c=20", b20),
            )
        ],
    ]
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(width[i]) for i, c in enumerate(row)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in width) + "|")
    checks = [
        ("turn p50 (c=1)", f"{b1['p50']:.2f} ms", "≤ 3 ms", b1["p50"] <= 3),
        (
            "turn p50 / direct p50",
            f"{b1['p50'] / d1['p50']:.1f}×",
            "≤ 6×",
            b1["p50"] <= 6 * d1["p50"],
        ),
        (
            "turns/s ÷ bank req/s (c=20)",
            f"{b20['rps'] / d20['rps']:.2f}",
            "≥ 0.33",
            b20["rps"] >= d20["rps"] / 3,
        ),
        (
            "middleware overhead p50",
            f"{m['overhead']:.3f} ms (raw {m['raw_p50']:.2f}, ours {m['ours_p50']:.2f})",
            "≤ 0.3 ms",
            m["overhead"] <= 0.3,
        ),
        (
            "bot RSS",
            f"{r['bot_rss_mb']:.0f} MB (after long run {r['bot_rss_after_mb']:.0f})",
            "≤ 150 MB",
            r["bot_rss_after_mb"] <= 150,
        ),
        ("cold start to /ready", f"{r['cold_start_s']:.2f} s", "≤ 1.5 s", r["cold_start_s"] <= 1.5),
        (
            f"turn p50, first 10 vs last 10 of {r['long_turns']}",
            f"{long['first10_p50']:.2f} vs {long['last10_p50']:.2f} ms "
            f"(last 200: {long['last200_p50']:.2f})",
            "no growth",
            long["last200_p50"] <= long["first10_p50"] * 1.5 + 0.5,
        ),
    ]
    lines += ["", "| check | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else 'NO'} |" for a, b, c, ok in checks]
    lines += [
        "",
        "Where a turn's CPU goes (one process, uvloop, each part alone; ms per call):",
        "",
        "| part | CPU ms |",
        "|---|---|",
    ]
    lines += [f"| {part} | {ms:.3f} |" for part, ms in r["stages"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--long-turns", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2000, help="calls for the overhead test")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    results = run(args)
    results["long_turns"] = args.long_turns
    text = table(results)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "turns.md").write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
