"""One contract, every store: SQLite always, PostgreSQL when a server is there."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from intentbridge.conversation.state import Conversation, Frame
from intentbridge.errors import StoreError
from intentbridge.stores import AuditEntry, PendingOperation, Store, open_store
from intentbridge.types import Money

POSTGRES = os.environ.get("INTENTBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _postgres_available() -> bool:
    store = open_store(POSTGRES)
    try:
        await store.open()
    except StoreError:
        return False
    await store.close()
    return True


@pytest.fixture(params=["sqlite", "sqlalchemy-sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    elif request.param == "sqlalchemy-sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        if not await _postgres_available():
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL at {POSTGRES} is required under CI=true")
            pytest.skip(f"no PostgreSQL at {POSTGRES} (set INTENTBRIDGE_TEST_POSTGRES)")
        url = POSTGRES
    s = open_store(url)
    await s.open()
    yield s
    await s.close()


async def test_conversation_round_trip_keeps_types(store: Store) -> None:
    cid = f"rest:{uuid.uuid4().hex}"
    conv = Conversation(id=cid, user_id="alice")
    conv.frame = Frame(
        operation="transfer_money",
        params={"amount": Money(Decimal("50.00"), "EUR"), "to_account": "savings"},
        status="confirming",
    )
    await store.save_conversation(cid, conv.to_json())
    loaded = await store.load_conversation(cid)
    assert loaded is not None
    again = Conversation.from_json(loaded)
    assert again.frame is not None
    assert again.frame.params["amount"] == Money(Decimal("50.00"), "EUR")
    assert again.frame.status == "confirming"


async def test_save_overwrites_and_delete_removes(store: Store) -> None:
    cid = f"rest:{uuid.uuid4().hex}"
    await store.save_conversation(cid, {"id": cid, "user_id": "u", "n": 1})
    await store.save_conversation(cid, {"id": cid, "user_id": "u", "n": 2})
    assert (await store.load_conversation(cid) or {})["n"] == 2
    await store.delete_conversation(cid)
    assert await store.load_conversation(cid) is None


async def test_audit_is_newest_first_and_filterable(store: Store) -> None:
    cid = f"rest:{uuid.uuid4().hex}"
    for i in range(3):
        await store.add_audit(
            AuditEntry(
                conversation_id=cid,
                user_id="alice",
                operation=f"op{i}",
                backend="bank",
                method="GET",
                path="/x",
                outcome="ok",
                params={"i": i},
                latency_ms=1.5,
            )
        )
    records = await store.audit(conversation_id=cid)
    assert [r.operation for r in records] == ["op2", "op1", "op0"]
    assert records[0].params == {"i": 2}


async def test_pending_operations_until_finished(store: Store) -> None:
    key = f"ib-{uuid.uuid4().hex}"
    await store.put_pending(
        PendingOperation(idempotency_key=key, conversation_id="c", operation="t", params={})
    )
    await store.put_pending(  # the same key twice is one pending operation
        PendingOperation(idempotency_key=key, conversation_id="c", operation="t", params={})
    )
    assert [p.idempotency_key for p in await store.pending()].count(key) == 1
    assert await store.finish_pending(key, "unknown", "outcome_unknown")  # still open
    assert key in [p.idempotency_key for p in await store.pending()]
    assert await store.finish_pending(key, "done", "ok")
    assert key not in [p.idempotency_key for p in await store.pending()]
    # a second worker settling the same key learns that it was already settled
    assert not await store.finish_pending(key, "failed", "outcome_unknown")
    assert not await store.finish_pending(key, "done", "ok")


async def test_ping(store: Store) -> None:
    assert await store.ping()


async def test_unreachable_store_fails_clearly() -> None:
    bad = open_store("postgresql://nobody:hunter2@127.0.0.1:1/none")
    with pytest.raises(StoreError) as info:
        await bad.open()
    assert "hunter2" not in str(info.value)


async def test_incoming_event_ids_are_remembered_once(store: Store) -> None:
    event = uuid.uuid4().hex
    assert await store.remember_event("bank", event)
    assert not await store.remember_event("bank", event)
    assert await store.remember_event("other", event)


async def test_a_second_store_on_the_same_file_sees_the_writes(tmp_path: Path) -> None:
    """Two processes (here two stores) on one SQLite file share conversations."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    a, b = open_store(url), open_store(url)
    await a.open()
    await b.open()
    await a.save_conversation("rest:x", {"id": "rest:x", "n": 1})
    assert (await b.load_conversation("rest:x") or {})["n"] == 1
    await a.close()
    await b.close()
