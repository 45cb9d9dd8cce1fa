"""SQLite storage and the bank's rules (balances, transfers, idempotency, tokens).

Every call opens its own short-lived connection, so the store is safe to use from FastAPI's
thread pool. Writes are serialised twice over: a process-wide lock (so threads never fight for
SQLite's write lock) and `BEGIN IMMEDIATE` (so several processes sharing a file stay correct).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .models import DepositRequest, TransferRequest
from .money import format_cents, to_cents
from .seed import seed

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    id            TEXT PRIMARY KEY,
    customer      TEXT NOT NULL REFERENCES customers(id),
    name          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0),
    UNIQUE (customer, name)
);
CREATE TABLE IF NOT EXISTS payees (
    id       TEXT PRIMARY KEY,
    customer TEXT NOT NULL REFERENCES customers(id),
    name     TEXT NOT NULL,
    iban     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    amount_cents INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    description  TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    booked_at    TEXT NOT NULL,
    transfer_id  TEXT
);
CREATE INDEX IF NOT EXISTS transactions_by_account ON transactions (account_id, booked_at, seq);
CREATE TABLE IF NOT EXISTS transfers (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    customer        TEXT NOT NULL REFERENCES customers(id),
    idempotency_key TEXT NOT NULL,
    from_account    TEXT NOT NULL,
    to_account      TEXT,
    payee           TEXT,
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    currency        TEXT NOT NULL,
    description     TEXT,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (customer, idempotency_key)
);
-- The outcome of every keyed POST that reached the bank's rules, replayed on retries.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    customer     TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (customer, key)
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class BankError(Exception):
    """A refusal with an HTTP status and a machine-readable code."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _transaction_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "amount": format_cents(row["amount_cents"]),
        "currency": row["currency"],
        "description": row["description"],
        "counterparty": row["counterparty"],
        "booked_at": row["booked_at"],
    }


def _transfer_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "idempotency_key": row["idempotency_key"],
        "from_account": row["from_account"],
        "to_account": row["to_account"],
        "payee": row["payee"],
        "amount": format_cents(row["amount_cents"]),
        "currency": row["currency"],
        "description": row["description"],
        "status": row["status"],
        "created_at": row["created_at"],
    }


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._write_lock = threading.Lock()
        # Reads reuse one connection per worker thread: opening a connection and
        # setting its pragmas cost more than the query itself.
        self._readers = threading.local()

    # -- plumbing ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        # With WAL, NORMAL stays consistent on a crash and skips an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect()
        yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()

    def initialise(self, extra_customers: int = 0) -> None:
        """Create the schema and seed demo data; idempotent."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            # WAL lets readers carry on while a transfer is being written.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()
        with self._write() as conn:
            seed(conn, extra_customers)

    # -- tokens ------------------------------------------------------------------------

    def issue_token(self, client_id: str, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._write() as conn:
            conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO tokens (token_hash, client_id, expires_at) VALUES (?, ?, ?)",
                (_hash_token(token), client_id, now + ttl),
            )
        return token

    def token_is_valid(self, token: str) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT expires_at FROM tokens WHERE token_hash = ?", (_hash_token(token),)
            ).fetchone()
        return row is not None and row["expires_at"] > time.time()

    # -- reads -------------------------------------------------------------------------

    @staticmethod
    def _require_customer(conn: sqlite3.Connection, customer: str) -> None:
        if conn.execute("SELECT 1 FROM customers WHERE id = ?", (customer,)).fetchone() is None:
            raise BankError(404, "customer_not_found", f"No customer {customer!r}")

    @staticmethod
    def _account(conn: sqlite3.Connection, customer: str, account_id: str) -> sqlite3.Row:
        # Another customer's account looks exactly like a missing one: no probing.
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM accounts WHERE id = ? AND customer = ?", (account_id, customer)
        ).fetchone()
        if row is None:
            raise BankError(404, "account_not_found", f"No account {account_id!r} for {customer}")
        return row

    def accounts(self, customer: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            self._require_customer(conn, customer)
            rows = conn.execute(
                "SELECT * FROM accounts WHERE customer = ? ORDER BY name", (customer,)
            ).fetchall()
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "balance": format_cents(r["balance_cents"]),
                "currency": r["currency"],
            }
            for r in rows
        ]

    def transactions(self, customer: str, account_id: str, limit: int) -> list[dict[str, Any]]:
        with self._read() as conn:
            self._require_customer(conn, customer)
            self._account(conn, customer, account_id)
            rows = conn.execute(
                "SELECT * FROM transactions WHERE account_id = ?"
                " ORDER BY booked_at DESC, seq DESC LIMIT ?",
                (account_id, limit),
            ).fetchall()
        return [_transaction_json(r) for r in rows]

    def payees(self, customer: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            self._require_customer(conn, customer)
            rows = conn.execute(
                "SELECT id, name, iban FROM payees WHERE customer = ? ORDER BY name", (customer,)
            ).fetchall()
        return [dict(r) for r in rows]

    def transfers(
        self, customer: str, idempotency_key: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        query = "SELECT * FROM transfers WHERE customer = ?"
        params: list[Any] = [customer]
        if idempotency_key is not None:
            query += " AND idempotency_key = ?"
            params.append(idempotency_key)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        with self._read() as conn:
            self._require_customer(conn, customer)
            rows = conn.execute(query, params).fetchall()
        return [_transfer_json(r) for r in rows]

    def transfer(self, customer: str, transfer_id: str) -> dict[str, Any]:
        with self._read() as conn:
            self._require_customer(conn, customer)
            row = conn.execute(
                "SELECT * FROM transfers WHERE id = ? AND customer = ?", (transfer_id, customer)
            ).fetchone()
        if row is None:
            raise BankError(404, "transfer_not_found", f"No transfer {transfer_id!r}")
        return _transfer_json(row)

    # -- writes ------------------------------------------------------------------------

    def create_transfer(
        self, customer: str, key: str, request: TransferRequest
    ) -> tuple[int, bytes, bool]:
        """Run a keyed transfer; returns (status, JSON body, replayed).

        Outcomes that depend on the moment (success, insufficient funds) are stored under the
        key and replayed byte for byte. Refusals that would be the same on any retry (unknown
        account, wrong currency) are raised as BankError and not stored, so a corrected request
        may reuse the key.
        """
        fingerprint = request.fingerprint()
        with self._write() as conn:
            self._require_customer(conn, customer)
            stored = conn.execute(
                "SELECT request_hash, status_code, body FROM idempotency_keys"
                " WHERE customer = ? AND key = ?",
                (customer, key),
            ).fetchone()
            if stored is not None:
                if stored["request_hash"] != fingerprint:
                    raise BankError(
                        422,
                        "idempotency_key_reused",
                        f"Idempotency-Key {key!r} was already used with a different request",
                    )
                return stored["status_code"], bytes(stored["body"]), True

            status, body = self._execute_transfer(conn, customer, key, request)
            encoded = _encode(body)
            conn.execute(
                "INSERT INTO idempotency_keys"
                " (customer, key, request_hash, status_code, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (customer, key, fingerprint, status, encoded, now_iso()),
            )
            return status, encoded, False

    def _execute_transfer(
        self, conn: sqlite3.Connection, customer: str, key: str, request: TransferRequest
    ) -> tuple[int, dict[str, Any]]:
        source = self._account(conn, customer, request.from_account)
        target: sqlite3.Row | None = None
        if request.to_account is not None:
            target = self._account(conn, customer, request.to_account)
            if target["id"] == source["id"]:
                raise BankError(422, "same_account", "from_account and to_account are the same")
            destination = str(target["name"])
        else:
            payee = conn.execute(
                "SELECT * FROM payees WHERE id = ? AND customer = ?", (request.payee, customer)
            ).fetchone()
            if payee is None:
                raise BankError(404, "payee_not_found", f"No payee {request.payee!r}")
            destination = str(payee["name"])
        for account in (source, target):
            if account is not None and account["currency"] != request.currency:
                raise BankError(
                    422,
                    "currency_mismatch",
                    f"Account {account['id']} holds {account['currency']}, not {request.currency}",
                )

        cents = to_cents(request.amount)
        if source["balance_cents"] < cents:
            balance = format_cents(source["balance_cents"])
            return 422, {
                "error": "insufficient_funds",
                "detail": f"Insufficient funds in account {source['id']}"
                f" (balance {balance} {source['currency']})",
            }

        transfer_id = f"tr-{uuid.uuid4().hex[:16]}"
        created = now_iso()
        description = request.description or f"Transfer to {destination}"
        conn.execute(
            "INSERT INTO transfers (id, customer, idempotency_key, from_account, to_account,"
            " payee, amount_cents, currency, description, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?)",
            (
                transfer_id,
                customer,
                key,
                source["id"],
                request.to_account,
                request.payee,
                cents,
                request.currency,
                request.description,
                created,
            ),
        )
        self._book(
            conn,
            source["id"],
            -cents,
            currency=request.currency,
            description=description,
            counterparty=destination,
            booked_at=created,
            transfer_id=transfer_id,
        )
        if target is not None:
            self._book(
                conn,
                target["id"],
                cents,
                currency=request.currency,
                description=description,
                counterparty=source["name"],
                booked_at=created,
                transfer_id=transfer_id,
            )
        row = conn.execute("SELECT * FROM transfers WHERE id = ?", (transfer_id,)).fetchone()
        return 201, _transfer_json(row)

    @staticmethod
    def _book(
        conn: sqlite3.Connection,
        account_id: str,
        cents: int,
        *,
        currency: str,
        description: str,
        counterparty: str,
        booked_at: str,
        transfer_id: str | None = None,
    ) -> str:
        """Write one ledger line and move the balance (the CHECK stops it going negative)."""
        transaction_id = f"txn-{uuid.uuid4().hex[:16]}"
        conn.execute(
            "UPDATE accounts SET balance_cents = balance_cents + ? WHERE id = ?",
            (cents, account_id),
        )
        conn.execute(
            "INSERT INTO transactions (id, account_id, amount_cents, currency, description,"
            " counterparty, booked_at, transfer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                transaction_id,
                account_id,
                cents,
                currency,
                description,
                counterparty,
                booked_at,
                transfer_id,
            ),
        )
        return transaction_id

    def deposit(self, request: DepositRequest) -> dict[str, Any]:
        """Credit an account from outside; returns the `payment.received` event."""
        with self._write() as conn:
            self._require_customer(conn, request.customer)
            account = self._account(conn, request.customer, request.account)
            if request.currency is not None and request.currency != account["currency"]:
                raise BankError(
                    422,
                    "currency_mismatch",
                    f"Account {account['id']} holds {account['currency']}, not {request.currency}",
                )
            created = now_iso()
            transaction_id = self._book(
                conn,
                account["id"],
                to_cents(request.amount),
                currency=account["currency"],
                description=request.description or f"Payment from {request.counterparty}",
                counterparty=request.counterparty,
                booked_at=created,
            )
        return {
            "id": str(uuid.uuid4()),
            "type": "payment.received",
            "customer": request.customer,
            "account": account["id"],
            "amount": format_cents(to_cents(request.amount)),
            "currency": account["currency"],
            "counterparty": request.counterparty,
            "transaction_id": transaction_id,
            "created_at": created,
        }
