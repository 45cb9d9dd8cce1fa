"""Inline entity annotations in Rasa's markdown-like style.

Three forms are understood::

    move [50 euros](amount) to savings
    from my [savings account](account:savings)          # value is a synonym
    to [savings]{"entity": "account", "role": "to", "group": "1"}

``[`` and ``]`` are reserved: outside an annotation they are an error, because a
forgotten ``(entity)`` would otherwise silently become plain text.

>>> parse_annotated("send [5 euros](amount)")
('send 5 euros', (EntitySpan(start=5, end=12, entity='amount', value='5 euros', ...),))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.data import LABEL_NAME_HINT, EntitySpan, label_name_problem

# names in the short form: anything but the delimiters of that form
_SHORT_ENTITY = re.compile(r"^[^\s:()\[\]{}]+$")
_SHORT_VALUE = re.compile(r"^[^()\[\]{}\n]+$")
_JSON_KEYS = frozenset({"entity", "value", "role", "group"})


def parse_annotated(
    annotated: str, *, path: str | None = None, line: int | None = None
) -> tuple[str, tuple[EntitySpan, ...]]:
    """Strip annotations from ``annotated``; return the plain text and the spans.

    Raises :class:`TrainingDataError` for unbalanced brackets, a ``[text]`` not
    followed by ``(entity)`` or ``{json}``, or bad JSON in the dictionary form.
    """
    where = _Where(annotated, path, line)
    out: list[str] = []
    spans: list[EntitySpan] = []
    pos = 0
    length = 0
    n = len(annotated)
    while pos < n:
        ch = annotated[pos]
        if ch == "]":
            raise _error(where, pos, "unexpected ']' without a matching '['")
        if ch != "[":
            out.append(ch)
            length += 1
            pos += 1
            continue
        close = annotated.find("]", pos + 1)
        nested = annotated.find("[", pos + 1)
        if close == -1 or (nested != -1 and nested < close):
            raise _error(where, pos, "unbalanced '[': no matching ']'")
        entity_text = annotated[pos + 1 : close]
        if not entity_text:
            raise _error(where, pos, "empty annotation '[]'")
        after = close + 1
        if after < n and annotated[after] == "(":
            end = annotated.find(")", after)
            if end == -1:
                raise _error(where, after, "unbalanced '(': no matching ')'")
            span = _short_form(annotated[after + 1 : end], entity_text, length, after, where)
            pos = end + 1
        elif after < n and annotated[after] == "{":
            end = _json_end(annotated, after)
            if end == -1:
                raise _error(where, after, "unbalanced '{': no matching '}'")
            span = _json_form(annotated[after : end + 1], entity_text, length, after, where)
            pos = end + 1
        else:
            raise _error(
                where, pos, f"'[{entity_text}]' must be followed by (entity) or {{\"entity\": ...}}"
            )
        spans.append(span)
        out.append(entity_text)
        length += len(entity_text)
    return "".join(out), tuple(spans)


def _short_form(inner: str, entity_text: str, start: int, at: int, where: _Where) -> EntitySpan:
    entity, sep, value = inner.partition(":")
    entity = entity.strip()
    value = value.strip()  # "(city: NYC)" means "NYC"
    if not entity or not _SHORT_ENTITY.match(entity):
        raise _error(where, at, f"bad entity name {entity!r} in ({inner})")
    problem = label_name_problem(entity, None)
    if problem is not None:
        raise _error(where, at, f"{problem} in [{entity_text}]({inner})", LABEL_NAME_HINT)
    if sep and not value:
        raise _error(where, at, f"empty value after ':' in ({inner})")
    return EntitySpan(
        start=start,
        end=start + len(entity_text),
        entity=entity,
        value=value if sep else entity_text,
    )


def _json_end(src: str, start: int) -> int:
    """Index of the '}' closing the JSON object at ``start`` (strings may hold braces)."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(src)):
        c = src[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _json_form(raw: str, entity_text: str, start: int, at: int, where: _Where) -> EntitySpan:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _error(where, at, f"invalid JSON in annotation: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, deep nesting
        raise _error(where, at, f"invalid JSON in annotation: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("entity"), str) or not obj["entity"]:
        raise _error(where, at, 'annotation JSON needs a string "entity"')
    unknown = set(obj) - _JSON_KEYS
    if unknown:
        raise _error(
            where,
            at,
            f"unknown annotation key(s) {sorted(unknown)}; known: entity, value, role, group",
        )
    annotation = f"[{entity_text}]{raw}"
    value = _canonical(obj.get("value"), entity_text)
    if value is None:
        raise _error(
            where,
            at,
            f'"value" in {annotation} must be a string or a number, '
            f"not {type(obj['value']).__name__}",
            'write the canonical value as a string, "value": "...", or leave "value" out',
        )
    role = obj.get("role")
    group = obj.get("group")
    role = str(role) if role is not None else None
    problem = label_name_problem(obj["entity"], role)
    if problem is not None:
        raise _error(where, at, f"{problem} in {annotation}", LABEL_NAME_HINT)
    return EntitySpan(
        start=start,
        end=start + len(entity_text),
        entity=obj["entity"],
        value=value,
        role=role,
        group=str(group) if group is not None else None,
    )


def _canonical(value: object, entity_text: str) -> str | None:
    """The canonical value a JSON "value" gives; None when it cannot be one.

    A missing or null value means none: the covered text is the value.
    """
    if value is None:
        return entity_text
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class _Where:
    """The annotated line being parsed and where it came from, for error messages."""

    source: str
    path: str | None
    line: int | None


_HINT = (
    'annotate entities as [text](entity), [text](entity:value) or [text]{"entity": "...", '
    '"role": "..."}'
)


def _error(where: _Where, pos: int, message: str, hint: str = _HINT) -> TrainingDataError:
    return TrainingDataError(
        f"{message} at column {pos + 1} in {where.source!r}",
        path=where.path,
        line=where.line,
        hint=hint,
    )


def format_annotated(text: str, spans: Sequence[EntitySpan]) -> str:
    """Write ``text`` with ``spans`` as inline annotations (inverse of :func:`parse_annotated`).

    Uses the shortest form that reads back identically: ``(entity)``,
    ``(entity:value)``, or the JSON form for roles, groups and awkward values.
    Overlapping spans cannot be written inline and raise :class:`TrainingDataError`, as
    do entity and role names with a '#' (which :func:`parse_annotated` refuses).
    """
    parts: list[str] = []
    pos = 0
    for sp in sorted(spans, key=lambda s: s.start):
        if sp.start < pos:
            raise TrainingDataError(
                f"overlapping entities cannot be written inline in {text!r}", field="entities"
            )
        problem = label_name_problem(sp.entity, sp.role)
        if problem is not None:
            raise TrainingDataError(problem, field="entities", hint=LABEL_NAME_HINT)
        covered = text[sp.start : sp.end]
        parts.append(_escape_plain(text[pos : sp.start], text))
        if "[" in covered or "]" in covered:
            raise TrainingDataError(
                f"entity text {covered!r} contains '[' or ']' and cannot be annotated inline",
                field="entities",
            )
        parts.append(f"[{covered}]{_label(sp, covered)}")
        pos = sp.end
    parts.append(_escape_plain(text[pos:], text))
    return "".join(parts)


def _label(sp: EntitySpan, covered: str) -> str:
    if sp.role is None and sp.group is None and _SHORT_ENTITY.match(sp.entity):
        if sp.value == covered:
            return f"({sp.entity})"
        if _SHORT_VALUE.match(sp.value) and sp.value.strip() == sp.value:
            return f"({sp.entity}:{sp.value})"
    obj: dict[str, str] = {"entity": sp.entity}
    if sp.value != covered:
        obj["value"] = sp.value
    if sp.role is not None:
        obj["role"] = sp.role
    if sp.group is not None:
        obj["group"] = sp.group
    return json.dumps(obj, ensure_ascii=False)


def _escape_plain(chunk: str, text: str) -> str:
    # Rasa's format has no escape for brackets; refuse rather than write a file
    # that reads back differently.
    if "[" in chunk or "]" in chunk:
        raise TrainingDataError(
            f"text {text!r} contains '[' or ']', which inline annotation reserves",
            field="text",
            hint="use the JSONL format for such examples",
        )
    return chunk
