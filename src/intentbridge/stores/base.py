"""What a store keeps and the protocol every store implements.

A store holds three things: each conversation's state (a JSON document, written after
every turn), the audit trail (one record per backend call) and the operations that
move money and were started but not known to be finished (keyed by idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

PendingStatus = Literal["pending", "done", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One backend call as the audit trail remembers it (parameters already redacted)."""

    conversation_id: str | None
    user_id: str | None
    operation: str
    backend: str
    method: str
    path: str
    outcome: str
    params: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    status_code: int | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    error: str | None = None
    trace_id: str | None = None
    timestamp: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PendingOperation:
    """A money-moving call whose key was stored before it was sent."""

    idempotency_key: str
    conversation_id: str
    operation: str
    params: dict[str, Any]
    status: PendingStatus = "pending"
    created_at: float = 0.0
    updated_at: float = 0.0
    outcome: str | None = None


class Store(Protocol):
    """Persistence for conversations, audit and pending operations.

    Implementations: :class:`intentbridge.stores.sql.SqlStore` (SQLite, PostgreSQL).
    All methods are bounded: a store that cannot answer raises ``StoreError``.
    """

    url: str

    async def open(self) -> None:
        """Create tables if needed; safe to call more than once."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the store answers a trivial query."""

    async def load_conversation(self, conversation_id: str) -> dict[str, Any] | None: ...

    async def save_conversation(self, conversation_id: str, state: dict[str, Any]) -> None: ...

    async def delete_conversation(self, conversation_id: str) -> None: ...

    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def audit(
        self, *, conversation_id: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Most recent first."""

    async def put_pending(self, op: PendingOperation) -> None: ...

    async def finish_pending(
        self, idempotency_key: str, status: PendingStatus, outcome: str
    ) -> bool:
        """Record what became of a pending operation; False when it was already final.

        Only a ``pending`` or ``unknown`` row changes, so when two workers settle the
        same operation exactly one of them is told it did (and tells the user).
        """

    async def pending(self) -> list[PendingOperation]:
        """Operations still ``pending`` or ``unknown``, oldest first."""

    async def remember_event(self, source: str, event_id: str) -> bool:
        """Record an incoming event id; False when it was seen before (a replay)."""
