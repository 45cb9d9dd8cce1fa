"""Stores: conversations, audit trail and pending operations.

>>> store = open_store("sqlite:///bot.sqlite3")
"""

from intentbridge.errors import ConfigError
from intentbridge.stores.base import AuditEntry, PendingOperation, Store
from intentbridge.stores.sql import SqlStore

__all__ = ["AuditEntry", "PendingOperation", "SqlStore", "Store", "open_store"]


def open_store(url: str) -> Store:
    """A store for ``url``: ``sqlite:///path``, ``postgresql://…``."""
    if url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return SqlStore(url)
    raise ConfigError(
        f"unsupported store URL {url.split('://', 1)[0]!r}://…",
        field="store.url",
        hint="use sqlite:///path/to/file.sqlite3 or postgresql://user@host/db",
    )
