"""Contract tests for the demo core bank, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from corebank.app import app_from_env, create_app
from fastapi import FastAPI

CLIENT = ("intentbridge-demo", "demo-secret")
SHARED_CUSTOMERS = 80
StartBank = Callable[[FastAPI], str]
NewUser = Callable[[], str]


@dataclass(frozen=True)
class Bank:
    url: str
    db_path: Path


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` under uvicorn in a daemon thread on a free port; yields the base URL."""
    # Port 0 lets the OS pick. uvicorn must bind it itself: a socket handed in from outside
    # misses asyncio's TCP_NODELAY and costs ~40 ms per request.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("core bank did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    """One bank shared by the module; tests keep apart by each using its own userNNNN."""
    db_path = tmp_path_factory.mktemp("corebank") / "bank.sqlite3"
    with serve(create_app(db_path, customers=SHARED_CUSTOMERS)) as url:
        yield Bank(url, db_path)


@pytest.fixture(scope="module")
def fresh_user() -> NewUser:
    """Hands out load-test customers of the shared bank, each with 1000.00 / 0.00 EUR."""
    counter = iter(range(1, SHARED_CUSTOMERS + 1))
    return lambda: f"user{next(counter):04d}"


@pytest.fixture
def start_bank() -> Iterator[StartBank]:
    """Serve an app built by the test itself (custom TTL, env config, webhooks)."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve(app))


def connect(url: str = "", token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Plain HTTP on loopback: verify=False only skips loading the CA bundle (~60 ms a client).
    return httpx.Client(base_url=url, headers=headers, verify=False)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """For one-off calls by full URL."""
    with connect() as client:
        yield client


def get_token(http: httpx.Client, url: str, **form: str) -> str:
    response = http.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials", **form}, auth=CLIENT
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def api(bank: Bank, http: httpx.Client) -> Iterator[httpx.Client]:
    with connect(bank.url, get_token(http, bank.url)) as client:
        yield client


def by_name(accounts: httpx.Response) -> dict[str, str]:
    assert accounts.status_code == 200
    return {a["name"]: a["balance"] for a in accounts.json()}


def balances(api: httpx.Client, customer: str) -> dict[str, str]:
    return by_name(api.get(f"/customers/{customer}/accounts"))


def transfer(
    api: httpx.Client, customer: str, body: dict[str, Any], key: str | None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post(f"/customers/{customer}/transfers", json=body, headers=headers)


def internal(user: str, amount: Any = "100.00", **extra: Any) -> dict[str, Any]:
    body = {
        "from_account": f"acc-{user}-chk",
        "to_account": f"acc-{user}-sav",
        "amount": amount,
        "currency": "EUR",
    }
    return body | extra


# -- OAuth2 -----------------------------------------------------------------------------


def test_health_needs_no_token(bank: Bank, http: httpx.Client) -> None:
    response = http.get(f"{bank.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_token_via_basic_auth_and_via_form_fields(bank: Bank, http: httpx.Client) -> None:
    basic = http.post(
        f"{bank.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
    )
    form = http.post(
        f"{bank.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
        },
    )
    for response in (basic, form):
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert isinstance(body["access_token"], str)
        assert len(body["access_token"]) >= 32
    assert basic.json()["access_token"] != form.json()["access_token"]


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "form"),
    [
        (basic("intentbridge-demo", "wrong"), {}),
        (basic("someone-else", "demo-secret"), {}),
        ("Basic !!not-base64!!", {}),
        (None, {"client_id": "intentbridge-demo", "client_secret": "wrong"}),
        (None, {"client_id": "intentbridge-demo"}),
        (None, {}),
    ],
)
def test_token_rejects_wrong_client(
    bank: Bank, authorization: str | None, form: dict[str, str], http: httpx.Client
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.post(
        f"{bank.url}/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


def test_token_rejects_other_grant_types(bank: Bank, http: httpx.Client) -> None:
    response = http.post(f"{bank.url}/oauth/token", data={"grant_type": "password"}, auth=CLIENT)
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-real-token", "Bearer", basic("a", "b")],
)
def test_api_requires_a_valid_bearer_token(
    bank: Bank, authorization: str | None, http: httpx.Client
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = http.get(f"{bank.url}/customers/alice/accounts", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "invalid_token"


def test_token_expires(tmp_path: Path, start_bank: StartBank, http: httpx.Client) -> None:
    url = start_bank(create_app(tmp_path / "bank.sqlite3", token_ttl=1))
    response = http.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
    )
    assert response.json()["expires_in"] == 1
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert http.get(f"{url}/customers/alice/accounts", headers=headers).status_code == 200
    time.sleep(1.1)
    expired = http.get(f"{url}/customers/alice/accounts", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Bearer"


def test_custom_client_secret(tmp_path: Path, start_bank: StartBank, http: httpx.Client) -> None:
    url = start_bank(create_app(tmp_path / "bank.sqlite3", client_secret="s3cret"))
    data = {"grant_type": "client_credentials"}
    assert http.post(f"{url}/oauth/token", data=data, auth=CLIENT).status_code == 401
    ok = http.post(f"{url}/oauth/token", data=data, auth=("intentbridge-demo", "s3cret"))
    assert ok.status_code == 200


# -- reads ------------------------------------------------------------------------------


def test_seeded_accounts(api: httpx.Client) -> None:
    response = api.get("/customers/alice/accounts")
    assert response.status_code == 200
    assert response.json() == [
        {"id": "acc-alice-chk", "name": "checking", "balance": "1250.50", "currency": "EUR"},
        {"id": "acc-alice-sav", "name": "savings", "balance": "5000.00", "currency": "EUR"},
    ]
    assert balances(api, "bob") == {"checking": "310.00", "savings": "120.00"}


def test_unknown_customer_is_404(api: httpx.Client) -> None:
    for path in ("accounts", "payees", "transfers"):
        response = api.get(f"/customers/mallory/{path}")
        assert response.status_code == 404
        assert response.json()["error"] == "customer_not_found"


def test_transactions_newest_first(api: httpx.Client) -> None:
    response = api.get("/customers/alice/accounts/acc-alice-chk/transactions")
    assert response.status_code == 200
    rows = response.json()
    assert 3 <= len(rows) <= 10
    keys = {"id", "account_id", "amount", "currency", "description", "counterparty", "booked_at"}
    for row in rows:
        assert keys <= set(row)
        assert row["account_id"] == "acc-alice-chk"
        assert row["currency"] == "EUR"
        assert Decimal(row["amount"]).as_tuple().exponent == -2
        assert row["booked_at"].endswith("Z")
    booked = [datetime.fromisoformat(row["booked_at"]) for row in rows]
    assert all(moment.utcoffset() is not None for moment in booked)
    assert booked == sorted(booked, reverse=True)
    assert any(Decimal(row["amount"]) < 0 for row in rows)
    assert any(Decimal(row["amount"]) > 0 for row in rows)

    limited = api.get("/customers/alice/accounts/acc-alice-chk/transactions", params={"limit": 2})
    assert limited.json() == rows[:2]
    too_many = api.get("/customers/alice/accounts/acc-alice-chk/transactions?limit=101")
    assert too_many.status_code == 422


def test_transactions_of_another_customers_account_is_404(api: httpx.Client) -> None:
    response = api.get("/customers/alice/accounts/acc-bob-chk/transactions")
    assert response.status_code == 404
    assert response.json()["error"] == "account_not_found"


def test_payees(api: httpx.Client) -> None:
    alice = api.get("/customers/alice/payees").json()
    assert {p["name"] for p in alice} >= {"Carol", "Landlord"}
    assert all(set(p) == {"id", "name", "iban"} for p in alice)
    assert [p["name"] for p in api.get("/customers/bob/payees").json()] == ["Dave"]


# -- transfers --------------------------------------------------------------------------


def test_internal_transfer_moves_money_both_sides(api: httpx.Client, fresh_user: NewUser) -> None:
    user = fresh_user()
    response = transfer(api, user, internal(user, "250.75", description="Rainy day"), "t-1")
    assert response.status_code == 201
    created = response.json()
    assert created["idempotency_key"] == "t-1"
    assert created["from_account"] == f"acc-{user}-chk"
    assert created["to_account"] == f"acc-{user}-sav"
    assert created["payee"] is None
    assert created["amount"] == "250.75"
    assert created["currency"] == "EUR"
    assert created["status"] == "completed"
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None
    assert balances(api, user) == {"checking": "749.25", "savings": "250.75"}

    debit = api.get(f"/customers/{user}/accounts/acc-{user}-chk/transactions").json()[0]
    credit = api.get(f"/customers/{user}/accounts/acc-{user}-sav/transactions").json()[0]
    assert (debit["amount"], credit["amount"]) == ("-250.75", "250.75")
    assert debit["description"] == "Rainy day"

    assert api.get(f"/customers/{user}/transfers").json() == [created]
    assert api.get(f"/customers/{user}/transfers/{created['id']}").json() == created
    by_key = api.get(f"/customers/{user}/transfers", params={"idempotency_key": "t-1"})
    assert by_key.json() == [created]
    assert api.get(f"/customers/{user}/transfers", params={"idempotency_key": "x"}).json() == []
    assert api.get(f"/customers/alice/transfers/{created['id']}").status_code == 404


def test_payee_transfer_debits_the_account_only(api: httpx.Client, fresh_user: NewUser) -> None:
    user = fresh_user()
    body = {
        "from_account": f"acc-{user}-chk",
        "payee": f"pay-{user}-landlord",
        "amount": 99.9,
        "currency": "EUR",
    }
    response = transfer(api, user, body, "rent")
    assert response.status_code == 201, response.text
    assert response.json()["payee"] == f"pay-{user}-landlord"
    assert response.json()["to_account"] is None
    assert response.json()["amount"] == "99.90"
    assert balances(api, user) == {"checking": "900.10", "savings": "0.00"}
    debit = api.get(f"/customers/{user}/accounts/acc-{user}-chk/transactions").json()[0]
    assert debit["amount"] == "-99.90"
    assert debit["counterparty"] == "Landlord"


def test_missing_idempotency_key_is_400(api: httpx.Client, fresh_user: NewUser) -> None:
    user = fresh_user()
    response = transfer(api, user, internal(user), None)
    assert response.status_code == 400
    assert response.json()["error"] == "missing_idempotency_key"
    assert balances(api, user) == {"checking": "1000.00", "savings": "0.00"}


def test_same_key_replays_the_first_response(api: httpx.Client, fresh_user: NewUser) -> None:
    user = fresh_user()
    first = transfer(api, user, internal(user, "10"), "replay-me")
    assert first.status_code == 201
    # The same request, spelled differently, is still the same request.
    for amount in ("10", "10.00", 10):
        again = transfer(api, user, internal(user, amount), "replay-me")
        assert again.status_code == 201
        assert again.content == first.content
    assert len(api.get(f"/customers/{user}/transfers").json()) == 1
    assert balances(api, user) == {"checking": "990.00", "savings": "10.00"}


def test_same_key_with_a_different_body_is_422(api: httpx.Client, fresh_user: NewUser) -> None:
    user = fresh_user()
    assert transfer(api, user, internal(user, "10.00"), "k").status_code == 201
    response = transfer(api, user, internal(user, "11.00"), "k")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert "detail" in response.json()
    assert balances(api, user) == {"checking": "990.00", "savings": "10.00"}


def test_insufficient_funds(api: httpx.Client, bank: Bank, fresh_user: NewUser) -> None:
    user = fresh_user()
    body = internal(user, "1000.01")
    response = transfer(api, user, body, "too-much")
    assert response.status_code == 422
    assert response.json() == {
        "error": "insufficient_funds",
        "detail": f"Insufficient funds in account acc-{user}-chk (balance 1000.00 EUR)",
    }
    assert balances(api, user) == {"checking": "1000.00", "savings": "0.00"}
    assert api.get(f"/customers/{user}/transfers").json() == []

    # Even once the money is there, the key keeps its first answer.
    deposit = {
        "customer": user,
        "account": f"acc-{user}-chk",
        "amount": "5.00",
        "counterparty": "Mum",
    }
    assert api.post("/admin/deposits", json=deposit).status_code == 201
    again = transfer(api, user, body, "too-much")
    assert (again.status_code, again.content) == (422, response.content)
    assert transfer(api, user, body, "new-key").status_code == 201
    assert balances(api, user) == {"checking": "4.99", "savings": "1000.01"}


def test_other_customers_accounts_are_404(api: httpx.Client, fresh_user: NewUser) -> None:
    user, other = fresh_user(), fresh_user()
    attempts = [
        (user, {**internal(user), "to_account": f"acc-{other}-sav"}),
        (user, {**internal(user), "from_account": f"acc-{other}-chk"}),
        (user, internal(other)),
        (
            user,
            {
                "from_account": f"acc-{user}-chk",
                "payee": f"pay-{other}-landlord",
                "amount": "1.00",
                "currency": "EUR",
            },
        ),
        (user, {**internal(user), "to_account": "acc-nobody"}),
    ]
    for n, (customer, body) in enumerate(attempts):
        response = transfer(api, customer, body, f"steal-{n}")
        assert response.status_code == 404, body
        assert "error" in response.json()
    for customer in (user, other):
        assert balances(api, customer) == {"checking": "1000.00", "savings": "0.00"}
        assert api.get(f"/customers/{customer}/transfers").json() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": "0"},
        {"amount": "-5.00"},
        {"amount": "1.234"},
        {"amount": 0.001},
        {"amount": "ten"},
        {"amount": "NaN"},
        {"amount": True},
        {"amount": None},
        {"currency": "USD"},
        {"currency": "euro"},
        {"to_account": None},
        {"payee": "pay-x"},
        {"to_account": "acc-alice-chk"},
    ],
)
def test_invalid_transfers_are_422(api: httpx.Client, changes: dict[str, Any]) -> None:
    body = internal("alice", "1.00") | changes
    # None means "leave the field out", except for amount where null itself is the mistake.
    body = {k: v for k, v in body.items() if v is not None or k == "amount"}
    response = transfer(api, "alice", body, f"bad-{json.dumps(changes)}")
    assert response.status_code == 422, response.text
    assert "error" in response.json()
    assert balances(api, "alice") == {"checking": "1250.50", "savings": "5000.00"}


# -- concurrency ------------------------------------------------------------------------


async def test_concurrent_requests_with_one_key_make_one_transfer(
    api: httpx.Client, bank: Bank, fresh_user: NewUser
) -> None:
    user = fresh_user()
    headers = {"Authorization": api.headers["Authorization"], "Idempotency-Key": "burst"}
    async with httpx.AsyncClient(base_url=bank.url, headers=headers, verify=False) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"/customers/{user}/transfers", json=internal(user, "40.00"))
                for _ in range(20)
            )
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert len((await client.get(f"/customers/{user}/transfers")).json()) == 1
        accounts = await client.get(f"/customers/{user}/accounts")
    assert by_name(accounts) == {"checking": "960.00", "savings": "40.00"}


async def test_concurrent_transfers_never_overdraw(
    api: httpx.Client, bank: Bank, fresh_user: NewUser
) -> None:
    user = fresh_user()
    headers = {"Authorization": api.headers["Authorization"]}
    async with httpx.AsyncClient(base_url=bank.url, headers=headers, verify=False) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/customers/{user}/transfers",
                    json=internal(user, "150.00"),
                    headers={"Idempotency-Key": f"k{n}"},
                )
                for n in range(12)
            )
        )
        accounts = await client.get(f"/customers/{user}/accounts")
    assert sorted(r.status_code for r in responses) == [201] * 6 + [422] * 6
    assert by_name(accounts) == {"checking": "100.00", "savings": "900.00"}


# -- seeding ----------------------------------------------------------------------------


def test_bank_customers_env_seeds_load_test_users(
    tmp_path: Path, start_bank: StartBank, monkeypatch: pytest.MonkeyPatch, http: httpx.Client
) -> None:
    db_path = tmp_path / "bank.sqlite3"
    monkeypatch.setenv("BANK_DB", str(db_path))
    monkeypatch.setenv("BANK_CUSTOMERS", "1200")
    started = time.monotonic()
    url = start_bank(app_from_env())
    assert time.monotonic() - started < 5
    with connect(url, get_token(http, url)) as client:
        assert client.get("/customers/user1200/accounts").json() == [
            {"id": "acc-user1200-chk", "name": "checking", "balance": "1000.00", "currency": "EUR"},
            {"id": "acc-user1200-sav", "name": "savings", "balance": "0.00", "currency": "EUR"},
        ]
        assert client.get("/customers/user1201/accounts").status_code == 404
        assert client.get("/customers/user0000/accounts").status_code == 404
        assert balances(client, "alice")["checking"] == "1250.50"
        assert transfer(client, "alice", internal("alice", "50.50"), "k").status_code == 201

    # A restart on the same file keeps what happened instead of seeding again.
    url = start_bank(create_app(db_path, customers=1200))
    with connect(url, get_token(http, url)) as c:
        assert balances(c, "alice") == {"checking": "1200.00", "savings": "5050.50"}
        assert len(c.get("/customers/alice/transfers").json()) == 1


# -- incoming payments ------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/bank", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_deposit_credits_and_sends_a_signed_webhook(
    tmp_path: Path,
    start_bank: StartBank,
    webhook_receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]],
    http: httpx.Client,
) -> None:
    hook_url, received = webhook_receiver
    url = start_bank(
        create_app(tmp_path / "bank.sqlite3", webhook_url=hook_url, webhook_secret="hook-key")
    )
    deposit = {
        "customer": "bob",
        "account": "acc-bob-chk",
        "amount": "42.10",
        "counterparty": "ACME GmbH",
    }
    with connect(url, get_token(http, url)) as client:
        assert http.post(f"{url}/admin/deposits", json=deposit).status_code == 401
        response = client.post("/admin/deposits", json=deposit)
        assert response.status_code == 201
        assert balances(client, "bob")["checking"] == "352.10"
        latest = client.get("/customers/bob/accounts/acc-bob-chk/transactions").json()[0]
        assert (latest["amount"], latest["counterparty"]) == ("42.10", "ACME GmbH")
        missing = client.post("/admin/deposits", json={**deposit, "account": "acc-alice-chk"})
        assert missing.status_code == 404

    hook_headers, body = received.get(timeout=5)
    timestamp = hook_headers["X-Webhook-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(b"hook-key", f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hook_headers["X-Webhook-Signature"] == f"sha256={expected.hexdigest()}"
    event = json.loads(body)
    assert event["type"] == "payment.received"
    assert event["id"] == response.json()["id"]
    assert {k: event[k] for k in ("customer", "account", "amount", "currency", "counterparty")} == {
        "customer": "bob",
        "account": "acc-bob-chk",
        "amount": "42.10",
        "currency": "EUR",
        "counterparty": "ACME GmbH",
    }
    assert datetime.fromisoformat(event["created_at"]).utcoffset() is not None
    assert received.empty()


def test_deposit_survives_an_unreachable_webhook(
    tmp_path: Path, start_bank: StartBank, http: httpx.Client
) -> None:
    # Port 9 (discard) on loopback is closed on any sane test machine: connection refused.
    url = start_bank(create_app(tmp_path / "bank.sqlite3", webhook_url="http://127.0.0.1:9/x"))
    with connect(url, get_token(http, url)) as client:
        deposit = {"customer": "bob", "account": "acc-bob-sav", "amount": 5, "counterparty": "Gran"}
        assert client.post("/admin/deposits", json=deposit).status_code == 201
        assert balances(client, "bob")["savings"] == "125.00"
