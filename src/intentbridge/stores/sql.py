"""A store on SQLAlchemy: SQLite by default (one file, created on first use), PostgreSQL at scale.

>>> store = SqlStore("sqlite:///.intentbridge/store.sqlite3")
>>> await store.open()
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from intentbridge.errors import StoreError
from intentbridge.stores.base import AuditEntry, PendingOperation, PendingStatus

_meta = MetaData()

conversations = Table(
    "ib_conversations",
    _meta,
    Column("id", String(255), primary_key=True),
    Column("state", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

audit_log = Table(
    "ib_audit",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("timestamp", Float, nullable=False, index=True),
    Column("conversation_id", String(255), index=True),
    Column("user_id", String(255)),
    Column("operation", String(255), nullable=False),
    Column("backend", String(255), nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("idempotency_key", String(255), index=True),
    Column("outcome", String(32), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("trace_id", String(64)),
)

pending_ops = Table(
    "ib_pending",
    _meta,
    Column("idempotency_key", String(255), primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    Column("operation", String(255), nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("outcome", String(32)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


seen_events = Table(
    "ib_events",
    _meta,
    Column("source", String(255), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("received_at", Float, nullable=False),
)


def _async_url(url: str) -> str:
    if url.startswith("sqlite+aiosqlite:///"):
        return url
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class SqlStore:
    """Conversations, audit and pending operations in SQL tables prefixed ``ib_``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError(f"store {self._safe_url} is not open; call await store.open()")
        return self._engine

    @property
    def _safe_url(self) -> str:
        # never show a password that may sit in a database URL
        if "@" in self.url:
            scheme, rest = self.url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return self.url

    async def open(self) -> None:
        if self._engine is not None:
            return
        url = _async_url(self.url)
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite+aiosqlite:///"):
            path = url.removeprefix("sqlite+aiosqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 5}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_timeout=5, pool_pre_ping=True)
        try:
            self._engine = create_async_engine(url, **kwargs)
            async with self._engine.begin() as conn:
                if url.startswith("sqlite"):
                    # WAL lets readers (audit CLI) work while the server writes
                    await conn.execute(text("PRAGMA journal_mode=WAL"))
                await conn.run_sync(_meta.create_all)
        except (SQLAlchemyError, OSError) as exc:
            self._engine = None
            raise StoreError(
                f"cannot open store {self._safe_url}: {exc.__class__.__name__}: {_first_line(exc)}"
            ) from exc

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, StoreError):
            return False
        return True

    async def load_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        async with self._errors("load conversation"), self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(conversations.c.state).where(conversations.c.id == conversation_id)
                )
            ).first()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
        return state

    async def save_conversation(self, conversation_id: str, state: dict[str, Any]) -> None:
        payload = _dumps(state)
        now = time.time()
        async with self._errors("save conversation"), self.engine.begin() as conn:
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(state=payload, updated_at=now)
            )
            if result.rowcount == 0:
                await conn.execute(
                    conversations.insert().values(id=conversation_id, state=payload, updated_at=now)
                )

    async def delete_conversation(self, conversation_id: str) -> None:
        async with self._errors("delete conversation"), self.engine.begin() as conn:
            await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._errors("write audit record"), self.engine.begin() as conn:
            await conn.execute(
                audit_log.insert().values(
                    timestamp=entry.timestamp or time.time(),
                    conversation_id=entry.conversation_id,
                    user_id=entry.user_id,
                    operation=entry.operation,
                    backend=entry.backend,
                    method=entry.method,
                    path=entry.path,
                    params=_dumps(entry.params),
                    idempotency_key=entry.idempotency_key,
                    outcome=entry.outcome,
                    status_code=entry.status_code,
                    latency_ms=entry.latency_ms,
                    attempts=entry.attempts,
                    error=entry.error,
                    trace_id=entry.trace_id,
                )
            )

    async def audit(
        self, *, conversation_id: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if conversation_id is not None:
            query = query.where(audit_log.c.conversation_id == conversation_id)
        async with self._errors("read audit records"), self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AuditEntry(
                id=row["id"],
                timestamp=row["timestamp"],
                conversation_id=row["conversation_id"],
                user_id=row["user_id"],
                operation=row["operation"],
                backend=row["backend"],
                method=row["method"],
                path=row["path"],
                params=json.loads(row["params"]),
                idempotency_key=row["idempotency_key"],
                outcome=row["outcome"],
                status_code=row["status_code"],
                latency_ms=row["latency_ms"],
                attempts=row["attempts"],
                error=row["error"],
                trace_id=row["trace_id"],
            )
            for row in rows
        ]

    async def put_pending(self, op: PendingOperation) -> None:
        now = time.time()
        row = {
            "idempotency_key": op.idempotency_key,
            "conversation_id": op.conversation_id,
            "operation": op.operation,
            "params": _dumps(op.params),
            "status": op.status,
            "outcome": op.outcome,
            "created_at": op.created_at or now,
            "updated_at": now,
        }
        async with self._errors("record pending operation"):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(pending_ops.insert().values(**row))
            except IntegrityError:
                # another worker recorded the same key first: the promise stands once
                pass

    async def finish_pending(
        self, idempotency_key: str, status: PendingStatus, outcome: str
    ) -> bool:
        async with self._errors("update pending operation"), self.engine.begin() as conn:
            result = await conn.execute(
                update(pending_ops)
                .where(
                    pending_ops.c.idempotency_key == idempotency_key,
                    pending_ops.c.status.in_(("pending", "unknown")),
                )
                .values(status=status, outcome=outcome, updated_at=time.time())
            )
        return bool(result.rowcount)

    async def pending(self) -> list[PendingOperation]:
        query = (
            select(pending_ops)
            .where(pending_ops.c.status.in_(("pending", "unknown")))
            .order_by(pending_ops.c.created_at)
        )
        async with self._errors("read pending operations"), self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            PendingOperation(
                idempotency_key=row["idempotency_key"],
                conversation_id=row["conversation_id"],
                operation=row["operation"],
                params=json.loads(row["params"]),
                status=row["status"],
                outcome=row["outcome"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    async def remember_event(self, source: str, event_id: str) -> bool:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    seen_events.insert().values(
                        source=source, event_id=event_id, received_at=time.time()
                    )
                )
        except IntegrityError:
            return False  # the primary key says: seen before
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(
                f"cannot record event in {self._safe_url}: {exc.__class__.__name__}"
            ) from exc
        return True

    def _errors(self, what: str) -> _StoreErrors:
        return _StoreErrors(what, self._safe_url)


class _StoreErrors:
    """Turn driver errors into StoreError with a secret-free message."""

    def __init__(self, what: str, url: str) -> None:
        self.what = what
        self.url = url

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is not None and isinstance(exc, SQLAlchemyError | OSError):
            raise StoreError(
                f"cannot {self.what} in {self.url}: {exc.__class__.__name__}: {_first_line(exc)}"
            ) from exc
        return False


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""
