"""Confirmed transfers through a hostile network: is money ever moved twice, or lost?

The sample bank (seeded with load-test customers) sits behind the fault-injecting
proxy: 20 % 503, 10 % 429 with Retry-After, 10 % lost responses (the bank acts, the
answer never arrives) and random delays on every customer call. Many users each ask
the bot, over its REST channel, to move money and confirm. Then the faults stop, the
bot settles what it could not confirm, and the bank's ledger is compared with what
users were told and with the audit trail.

    .venv/bin/python bench/chaos.py [--transfers 1000] [--users 100] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intentbridge.stores import open_store
from intentbridge.testing import FaultProxy, Faults
from turns import BANKING, CLI, CLIENT, PY, ROOT, free_port, process, wait_ready

FAULTS = Faults(
    error_5xx=0.20,
    rate_limit=0.10,
    retry_after=1,
    lose_response=0.10,
    latency=(0.0, 0.05),
    path_prefix="/customers/",
    seed=2026,
)


async def user_session(
    client: httpx.AsyncClient,
    user: str,
    amounts: list[Decimal],
    told: dict[str, str],
    latencies: list[float],
    transcript: dict[str, list[str]],
) -> None:
    for amount in amounts:
        key = f"{user}:{amount}"

        async def say(text: str) -> str:
            started = time.perf_counter()
            r = await client.post("/webhooks/rest/webhook", json={"sender": user, "message": text})
            latencies.append(time.perf_counter() - started)
            r.raise_for_status()
            texts = [m["text"] for m in r.json()]
            # news about earlier transfers arrives with later replies: keep everything
            transcript.setdefault(user, []).extend(texts)
            return "\n".join(texts)

        question = await say(f"move {amount} euros from checking to savings")
        if f"Move {amount} EUR" not in question:
            told[key] = "not_asked"  # a lookup failed under faults: nothing was confirmed
            await say("never mind")
            continue
        answer = await say("yes")
        if f"Done: {amount} EUR moved" in answer:
            told[key] = "done"
        elif "couldn't confirm" in answer:
            told[key] = "unknown"
        else:
            told[key] = "failed"


async def drive(
    bot_url: str, plan: dict[str, list[Decimal]], concurrency: int
) -> tuple[dict[str, str], list[float], dict[str, list[str]]]:
    told: dict[str, str] = {}
    latencies: list[float] = []
    transcript: dict[str, list[str]] = {}
    users = list(plan)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=bot_url, timeout=30, limits=limits) as client:
        for start in range(0, len(users), concurrency):
            batch = users[start : start + concurrency]
            await asyncio.gather(
                *(user_session(client, u, plan[u], told, latencies, transcript) for u in batch)
            )
    return told, latencies, transcript


async def settle(
    bot_url: str, store_url: str, users: list[str], wait_s: float
) -> tuple[int, dict[str, list[str]]]:
    """Wait for the bot's resolver to settle every unknown outcome; collect the updates."""
    store = open_store(store_url)
    await store.open()
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and await store.pending():  # noqa: ASYNC110 - polls a store
            await asyncio.sleep(0.5)
        left = len(await store.pending())
    finally:
        await store.close()
    updates: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=bot_url, timeout=10) as client:
        for user in users:
            r = await client.get(f"/conversations/{user}/outbox")
            updates[user] = [m["text"] for m in r.json()]
    return left, updates


def ledger(bank_url: str, users: list[str]) -> dict[str, list[dict[str, Any]]]:
    token = httpx.post(
        f"{bank_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
    ).json()["access_token"]
    out: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(base_url=bank_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for user in users:
            out[user] = c.get(f"/customers/{user}/transfers").json()
    return out


async def audit_outcomes(store_url: str) -> dict[str, str]:
    """The last audited outcome of each money-moving call, by idempotency key."""
    store = open_store(store_url)
    await store.open()
    try:
        records = await store.audit(limit=1_000_000)
    finally:
        await store.close()
    final: dict[str, str] = {}
    for r in reversed(records):  # oldest first, so the last outcome wins
        if r.idempotency_key:
            final[r.idempotency_key] = r.outcome
    return final


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ib-chaos-"))
    bank_port, bot_port = free_port(), free_port()
    bank_url, bot_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{bot_port}"
    store_url = f"sqlite:///{work / 'bot.sqlite3'}"
    users = [f"user{i:04d}" for i in range(1, args.users + 1)]
    per_user = args.transfers // args.users
    # distinct amounts per user, so every request is recognisable in the ledger
    plan = {
        u: [Decimal(1 + i) + Decimal(j) / 100 for j, i in enumerate(range(per_user))] for u in users
    }
    plan = {u: [a.quantize(Decimal("0.01")) for a in amounts] for u, amounts in plan.items()}
    env = {
        **os.environ,
        "BANK_PORT": str(bank_port),
        "BANK_DB": str(work / "bank.sqlite3"),
        "BANK_CUSTOMERS": str(args.users),
        "INTENTBRIDGE_RATE_LIMITS": "off",
        "BANK_LOG_LEVEL": "warning",
        "INTENTBRIDGE_STORE": store_url,
        "INTENTBRIDGE_LOG_LEVEL": "warning",
    }
    subprocess_env = {**env}
    results: dict[str, Any] = {}
    with process([PY, "-m", "corebank"], env, BANKING) as bank:
        wait_ready(f"{bank_url}/health", bank)
        with FaultProxy(bank_url, FAULTS).run_in_thread() as proxy:
            subprocess_env["COREBANK_URL"] = proxy.url
            cmd = [CLI, "run", str(BANKING), "--port", str(bot_port), "--log-level", "warning"]
            with process(cmd, subprocess_env, ROOT) as bot:
                wait_ready(f"{bot_url}/health", bot)
                started = time.perf_counter()
                told, latencies, transcript = asyncio.run(drive(bot_url, plan, args.concurrency))
                results["seconds"] = time.perf_counter() - started
                results["faults"] = proxy.stats.counts()
                proxy.set_faults(Faults())  # the network heals; settle what is unknown
                left, updates = asyncio.run(settle(bot_url, store_url, users, args.settle))
        transfers = ledger(bank_url, users)
    audit = asyncio.run(audit_outcomes(store_url))
    shutil.rmtree(work, ignore_errors=True)

    doubles = lost = disagree = 0
    settled_done = 0
    for user in users:
        by_amount = Counter(Decimal(t["amount"]) for t in transfers[user])
        for amount in plan[user]:
            key, n = f"{user}:{amount}", by_amount.get(amount, 0)
            doubles += n > 1
            said = told.get(key, "missing")
            news = [*transcript.get(user, []), *updates[user]]
            updated = [
                m
                for m in news
                if m.startswith("Update on your earlier request") and f" {amount} EUR" in m
            ]
            final_done = said == "done" or any("Done" in m for m in updated)
            if said == "unknown" and final_done:
                settled_done += 1
            if final_done and n == 0:
                lost += 1  # told it happened, but the bank has nothing
            if n > 0 and said in {"failed", "not_asked"}:
                lost += 1  # moved, but the user was told it did not
            if n > 0 and said == "unknown" and not final_done:
                lost += 1  # moved, and the user was never told
    ledger_keys = {t["idempotency_key"] for items in transfers.values() for t in items}
    for key in ledger_keys:
        if audit.get(key) != "ok":
            disagree += 1  # the bank moved it; the audit does not say so
    for key, outcome in audit.items():
        if outcome == "ok" and key not in ledger_keys:
            disagree += 1  # the audit says it moved; the bank has nothing
    outcomes = Counter(told.values())
    results.update(
        requests=sum(len(a) for a in plan.values()),
        outcomes=dict(outcomes),
        double_transfers=doubles,
        lost_transfers=lost,
        audit_disagreements=disagree,
        unresolved_unknown=left,
        settled_after_unknown=settled_done,
        ledger_transfers=sum(len(t) for t in transfers.values()),
        p50_turn_ms=statistics.median(latencies) * 1000,
        p95_turn_ms=statistics.quantiles(latencies, n=100)[94] * 1000,
    )
    return results


def table(r: dict[str, Any]) -> str:
    rows = [
        ("confirmed-transfer requests", r["requests"], ""),
        (
            "user told: done / unknown / failed / not asked",
            " / ".join(
                str(r["outcomes"].get(k, 0)) for k in ("done", "unknown", "failed", "not_asked")
            ),
            "",
        ),
        ("unknown, later settled as done", r["settled_after_unknown"], ""),
        ("transfers in the bank's ledger", r["ledger_transfers"], ""),
        ("faults injected", ", ".join(f"{k} {v}" for k, v in r["faults"].items() if v), ""),
        ("double transfers", r["double_transfers"], "0"),
        ("lost transfers", r["lost_transfers"], "0"),
        ("audit outcomes disagreeing with the ledger", r["audit_disagreements"], "0"),
        ("unknown outcomes left unresolved", r["unresolved_unknown"], "0"),
        ("turn latency p50 / p95", f"{r['p50_turn_ms']:.1f} / {r['p95_turn_ms']:.1f} ms", ""),
        ("wall time", f"{r['seconds']:.1f} s", ""),
    ]
    lines = ["| measure | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait for settling")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args)
    text = table(results)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.md").write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    bad = (
        results["double_transfers"]
        or results["lost_transfers"]
        or results["audit_disagreements"]
        or results["unresolved_unknown"]
    )
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
