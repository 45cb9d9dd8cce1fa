"""``intentbridge audit``: read the audit trail of a project's store."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from intentbridge.bot import STORE_ENV, project_store_url
from intentbridge.project import load_project
from intentbridge.stores import open_store


async def print_audit(
    project_dir: Path,
    *,
    as_json: bool,
    conversation: str | None,
    limit: int,
    store_url: str | None = None,
) -> None:
    project = load_project(project_dir)
    store = open_store(store_url or os.environ.get(STORE_ENV) or project_store_url(project))
    await store.open()
    try:
        records = await store.audit(conversation_id=conversation, limit=limit)
    finally:
        await store.close()
    if as_json:
        print(json.dumps([dataclasses.asdict(r) for r in records], default=str))
        return
    table = Table("time", "conversation", "operation", "outcome", "status", "ms", "key")
    for r in records:
        table.add_row(
            _time(r.timestamp),
            r.conversation_id or "",
            r.operation,
            r.outcome,
            str(r.status_code or ""),
            f"{r.latency_ms:.1f}",
            r.idempotency_key or "",
        )
    Console().print(table)


def _time(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
