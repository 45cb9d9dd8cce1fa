"""Whether text can be sent and stored at all: strings with a lone surrogate cannot.

JSON's syntax allows ``"\\ud800"`` and ``json.loads`` decodes UTF-8-encoded surrogates
too, so such strings arrive from chat clients, webhooks and backends; UTF-8 cannot
carry them, and a store, a log line or a request that meets one fails.
"""

from __future__ import annotations

from typing import Any


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
