"""Demo data: alice and bob with realistic history, plus optional bulk users for load tests."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .money import to_cents

CURRENCY = "EUR"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def account_id(customer: str, name: str) -> str:
    return f"acc-{customer}-{'chk' if name == 'checking' else 'sav'}"


# customer -> (display name, {account name: opening balance})
BASE_CUSTOMERS: dict[str, tuple[str, dict[str, str]]] = {
    "alice": ("Alice Weber", {"checking": "1250.50", "savings": "5000.00"}),
    "bob": ("Bob Keller", {"checking": "310.00", "savings": "120.00"}),
}

# (payee id, customer, name, IBAN); the IBANs carry valid check digits.
BASE_PAYEES = [
    ("pay-alice-carol", "alice", "Carol", "DE89370400440532013000"),
    ("pay-alice-landlord", "alice", "Landlord", "DE44500105175407324931"),
    ("pay-bob-dave", "bob", "Dave", "NL91ABNA0417164300"),
]
BULK_PAYEE_IBAN = "DE64100200300400500600"

# (account, signed amount, description, counterparty, days ago, hour of day)
BASE_HISTORY = [
    ("acc-alice-chk", "2850.00", "Salary November", "ACME GmbH", 20, 8),
    ("acc-alice-chk", "-950.00", "Rent November", "Landlord", 18, 9),
    ("acc-alice-sav", "500.00", "Monthly savings", "Alice Weber", 15, 10),
    ("acc-alice-chk", "-500.00", "Monthly savings", "Alice Weber", 15, 10),
    ("acc-alice-chk", "-64.30", "Groceries", "REWE Markt", 12, 17),
    ("acc-alice-chk", "-12.99", "Streaming subscription", "Netflix", 9, 6),
    ("acc-alice-chk", "-45.00", "Dinner", "Trattoria Roma", 6, 20),
    ("acc-alice-chk", "-120.00", "Concert tickets", "Carol", 3, 14),
    ("acc-alice-chk", "-23.70", "Pharmacy", "City Apotheke", 1, 11),
    ("acc-alice-sav", "4.15", "Interest", "Core Bank", 1, 0),
    ("acc-bob-chk", "1400.00", "Salary November", "Stadtwerke", 19, 8),
    ("acc-bob-chk", "-89.90", "Groceries", "Lidl", 7, 18),
    ("acc-bob-chk", "-35.00", "Mobile phone", "Telekom", 4, 7),
]


def seed(conn: sqlite3.Connection, extra_customers: int = 0) -> None:
    """Insert the demo data; safe to call on every start (existing rows are left alone)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if conn.execute("SELECT 1 FROM customers WHERE id = 'alice'").fetchone() is None:
        _seed_base(conn, now)
    if extra_customers > 0:
        _seed_bulk(conn, extra_customers)


def _seed_base(conn: sqlite3.Connection, now: datetime) -> None:
    for customer, (display, accounts) in BASE_CUSTOMERS.items():
        conn.execute("INSERT INTO customers (id, name) VALUES (?, ?)", (customer, display))
        for name, balance in accounts.items():
            conn.execute(
                "INSERT INTO accounts (id, customer, name, currency, balance_cents)"
                " VALUES (?, ?, ?, ?, ?)",
                (account_id(customer, name), customer, name, CURRENCY, to_cents(Decimal(balance))),
            )
    conn.executemany(
        "INSERT INTO payees (id, customer, name, iban) VALUES (?, ?, ?, ?)", BASE_PAYEES
    )
    # History is illustrative: balances above are the source of truth.
    ordered = sorted(BASE_HISTORY, key=lambda row: (-row[4], row[5]))
    conn.executemany(
        "INSERT INTO transactions (id, account_id, amount_cents, currency, description,"
        " counterparty, booked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                f"txn-seed-{n:03d}",
                account,
                to_cents(Decimal(amount)),
                CURRENCY,
                description,
                counterparty,
                iso((now - timedelta(days=days)).replace(hour=hour)),
            )
            for n, (account, amount, description, counterparty, days, hour) in enumerate(ordered)
        ],
    )


def _seed_bulk(conn: sqlite3.Connection, count: int) -> None:
    users = [f"user{i:04d}" for i in range(1, count + 1)]
    conn.executemany(
        "INSERT OR IGNORE INTO customers (id, name) VALUES (?, ?)",
        [(user, f"Load Test {user}") for user in users],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO accounts (id, customer, name, currency, balance_cents)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (account_id(user, name), user, name, CURRENCY, cents)
            for user in users
            for name, cents in (("checking", 100_000), ("savings", 0))
        ],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO payees (id, customer, name, iban) VALUES (?, ?, ?, ?)",
        [(f"pay-{user}-landlord", user, "Landlord", BULK_PAYEE_IBAN) for user in users],
    )
