"""Stores: conversations, audit trail and pending operations.

>>> store = open_store("sqlite:///bot.sqlite3")
"""

from typing import TYPE_CHECKING, Any

from intentbridge.errors import ConfigError
from intentbridge.stores.base import AuditEntry, PendingOperation, Store
from intentbridge.stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from intentbridge.stores.sql import SqlStore

__all__ = ["AuditEntry", "PendingOperation", "SqlStore", "SqliteStore", "Store", "open_store"]


def __getattr__(name: str) -> Any:
    # SQLAlchemy costs ~0.4 s to import; only PostgreSQL needs it
    if name == "SqlStore":
        from intentbridge.stores.sql import SqlStore

        return SqlStore
    raise AttributeError(name)


def open_store(url: str) -> Store:
    """A store for ``url``: ``sqlite:///path``, ``postgresql://…``.

    ``sqlite+aiosqlite:///path`` selects SQLAlchemy for SQLite too (slower; see
    :mod:`intentbridge.stores.sqlite` for why the default does not).
    """
    if url.startswith("sqlite:///"):
        return SqliteStore(url)
    if url.startswith(("sqlite+aiosqlite:///", "postgresql://", "postgres://")):
        from intentbridge.stores.sql import SqlStore

        return SqlStore(url)
    raise ConfigError(
        f"unsupported store URL {url.split('://', 1)[0]!r}://…",
        field="store.url",
        hint="use sqlite:///path/to/file.sqlite3 or postgresql://user@host/db",
    )
