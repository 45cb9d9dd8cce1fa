"""Text that may be sent, stored and shown.

- Strings with a lone surrogate cannot be sent or stored at all: JSON's syntax allows
  ``"\\ud800"`` and ``json.loads`` decodes UTF-8-encoded surrogates too, so they arrive
  from chat clients, webhooks and backends; UTF-8 cannot carry them, and a store, a
  log line or a request that meets one fails.
- Known secret values (credentials, environment values) must not be shown: a backend
  may echo a token in an error message, and a config error may quote an env value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Values shorter than this are not masked: a port or "5" would blank out other words.
MIN_SECRET_LENGTH = 4


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each of ``secrets`` (longest first) replaced by ``***``."""
    masked = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
    for secret in sorted(masked, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def is_unicode(text: str) -> bool:
    """Whether UTF-8 can carry ``text`` (no lone surrogate such as ``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_is_unicode(value: Any) -> bool:
    """Whether every key and string anywhere in a JSON value is :func:`is_unicode`.

    A loop, not recursion: the value may nest as deep as ``json.loads`` allows.
    """
    todo: list[Any] = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item)
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
        elif isinstance(item, str) and not is_unicode(item):
            return False
    return True
