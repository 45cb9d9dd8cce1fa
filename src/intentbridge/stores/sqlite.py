"""The default store: one SQLite file, through the standard library's ``sqlite3``.

Why not SQLAlchemy + aiosqlite here (PostgreSQL still goes through SQLAlchemy): a
statement on a local SQLite file in WAL mode takes about 10 µs, while handing it to
aiosqlite's thread and SQLAlchemy's greenlet bridge took 0.8–1.4 ms per statement
(measured), which was most of a turn's budget. So the statements run inline on the
event loop, with a short busy timeout so a second process never blocks it for long.

Durability: ``synchronous=NORMAL`` in WAL survives a crash of the process (a power
cut may lose the last commits). A pending money-moving call is the exception: its
row is committed with ``synchronous=FULL`` before the call is sent, so its key
survives a power cut too.

>>> store = SqliteStore("sqlite:///.intentbridge/store.sqlite3")
>>> await store.open()
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbridge.errors import StoreError
from intentbridge.stores.base import AuditEntry, PendingOperation, PendingStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ib_conversations (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ib_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp REAL NOT NULL, conversation_id TEXT,
    user_id TEXT, operation TEXT NOT NULL, backend TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, params TEXT NOT NULL, idempotency_key TEXT, outcome TEXT NOT NULL,
    status_code INTEGER, latency_ms REAL NOT NULL, attempts INTEGER NOT NULL, error TEXT,
    trace_id TEXT);
CREATE INDEX IF NOT EXISTS ib_audit_conversation ON ib_audit (conversation_id);
CREATE INDEX IF NOT EXISTS ib_audit_key ON ib_audit (idempotency_key);
CREATE TABLE IF NOT EXISTS ib_pending (
    idempotency_key TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, operation TEXT NOT NULL,
    params TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ib_pending_status ON ib_pending (status);
CREATE TABLE IF NOT EXISTS ib_events (
    source TEXT NOT NULL, event_id TEXT NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (source, event_id));
"""

_AUDIT_COLUMNS = (
    "id, timestamp, conversation_id, user_id, operation, backend, method, path, params, "
    "idempotency_key, outcome, status_code, latency_ms, attempts, error, trace_id"
)
_PENDING_COLUMNS = (
    "idempotency_key, conversation_id, operation, params, status, outcome, created_at, updated_at"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class SqliteStore:
    """Conversations, audit and pending operations in one SQLite file."""

    def __init__(self, url: str, *, busy_timeout: float = 2.0) -> None:
        if not url.startswith("sqlite:///"):
            raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path)")
        self.url = url
        self.path = url.removeprefix("sqlite:///")
        self.busy_timeout = busy_timeout
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.url}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def ping(self) -> bool:
        try:
            with self._errors("ping"):
                self._conn.execute("SELECT 1").fetchone()
        except StoreError:
            return False
        return True

    async def load_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        with self._errors("load conversation"):
            row = self._conn.execute(
                "SELECT state FROM ib_conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
        return state

    async def save_conversation(self, conversation_id: str, state: dict[str, Any]) -> None:
        with self._errors("save conversation"):
            self._conn.execute(
                "INSERT INTO ib_conversations (id, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (conversation_id, _dumps(state), time.time()),
            )

    async def delete_conversation(self, conversation_id: str) -> None:
        with self._errors("delete conversation"):
            self._conn.execute("DELETE FROM ib_conversations WHERE id = ?", (conversation_id,))

    async def add_audit(self, entry: AuditEntry) -> None:
        with self._errors("write audit record"):
            self._conn.execute(
                "INSERT INTO ib_audit (timestamp, conversation_id, user_id, operation, backend, "
                "method, path, params, idempotency_key, outcome, status_code, latency_ms, "
                "attempts, error, trace_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.timestamp or time.time(),
                    entry.conversation_id,
                    entry.user_id,
                    entry.operation,
                    entry.backend,
                    entry.method,
                    entry.path,
                    _dumps(entry.params),
                    entry.idempotency_key,
                    entry.outcome,
                    entry.status_code,
                    entry.latency_ms,
                    entry.attempts,
                    entry.error,
                    entry.trace_id,
                ),
            )

    async def audit(
        self, *, conversation_id: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = f"SELECT {_AUDIT_COLUMNS} FROM ib_audit"  # noqa: S608 - constant columns
        args: tuple[Any, ...] = ()
        if conversation_id is not None:
            query += " WHERE conversation_id = ?"
            args = (conversation_id,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._errors("read audit records"):
            rows = self._conn.execute(query, (*args, limit)).fetchall()
        return [
            AuditEntry(
                id=r[0],
                timestamp=r[1],
                conversation_id=r[2],
                user_id=r[3],
                operation=r[4],
                backend=r[5],
                method=r[6],
                path=r[7],
                params=json.loads(r[8]),
                idempotency_key=r[9],
                outcome=r[10],
                status_code=r[11],
                latency_ms=r[12],
                attempts=r[13],
                error=r[14],
                trace_id=r[15],
            )
            for r in rows
        ]

    async def put_pending(self, op: PendingOperation) -> None:
        now = time.time()
        with self._errors("record pending operation"):
            db = self._conn
            # this row is the promise that a call is never made twice: make it durable
            db.execute("PRAGMA synchronous=FULL")
            try:
                db.execute(
                    f"INSERT OR IGNORE INTO ib_pending ({_PENDING_COLUMNS}) "  # noqa: S608
                    "VALUES (?,?,?,?,?,?,?,?)",
                    (
                        op.idempotency_key,
                        op.conversation_id,
                        op.operation,
                        _dumps(op.params),
                        op.status,
                        op.outcome,
                        op.created_at or now,
                        now,
                    ),
                )
            finally:
                db.execute("PRAGMA synchronous=NORMAL")

    async def finish_pending(
        self, idempotency_key: str, status: PendingStatus, outcome: str
    ) -> bool:
        with self._errors("update pending operation"):
            cursor = self._conn.execute(
                "UPDATE ib_pending SET status = ?, outcome = ?, updated_at = ? "
                "WHERE idempotency_key = ? AND status IN ('pending', 'unknown')",
                (status, outcome, time.time(), idempotency_key),
            )
        return cursor.rowcount > 0

    async def pending(self) -> list[PendingOperation]:
        with self._errors("read pending operations"):
            rows = self._conn.execute(
                f"SELECT {_PENDING_COLUMNS} FROM ib_pending "  # noqa: S608 - constant columns
                "WHERE status IN ('pending', 'unknown') ORDER BY created_at"
            ).fetchall()
        return [
            PendingOperation(
                idempotency_key=r[0],
                conversation_id=r[1],
                operation=r[2],
                params=json.loads(r[3]),
                status=r[4],
                outcome=r[5],
                created_at=r[6],
                updated_at=r[7],
            )
            for r in rows
        ]

    async def remember_event(self, source: str, event_id: str) -> bool:
        with self._errors("record event"):
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO ib_events (source, event_id, received_at) VALUES (?,?,?)",
                (source, event_id, time.time()),
            )
        return cursor.rowcount == 1

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"store {self.url} is not open; call await store.open()")
        return self._db

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {what} in {self.url}: {exc}") from exc
