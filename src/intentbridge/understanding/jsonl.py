"""The shared JSONL training format: one ``{"text", "intent", "entities"}`` object a line.

Each entity is ``{"start", "end", "entity", "value"}`` with ``text[start:end] == value``.
Keys we do not know are ignored (SGD lines carry ``service``, ``parameters``...), except
three optional entity keys intentbridge writes itself so YAML converts without loss:
``role``, ``group`` and ``canonical`` (the synonym the span stands for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.data import (
    EntitySpan,
    TrainingData,
    TrainingExample,
    check_no_lone_surrogates,
    make_example,
    read_utf8,
)


def read_jsonl(path: Path | str) -> TrainingData:
    """Read a JSONL training file; errors name the file and the 1-based line.

    The file must be UTF-8; a leading byte order mark (as Windows editors write) is
    skipped.
    """
    p = Path(path)
    examples: list[TrainingExample] = []
    for lineno, raw in enumerate(read_utf8(p).split("\n"), start=1):
        if raw.strip():
            examples.append(parse_jsonl_line(raw, path=p, line=lineno))
    return TrainingData(examples=examples)


def parse_jsonl_line(
    raw: str, *, path: Path | str | None = None, line: int | None = None
) -> TrainingExample:
    """Parse one JSONL line into a :class:`TrainingExample`."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrainingDataError(
            f"invalid JSON: {exc.msg} at column {exc.colno}",
            path=path,
            line=line,
            hint=(
                "the line holds NUL characters: is the file UTF-16? Save it as UTF-8"
                if "\0" in raw
                else "each line must be one complete JSON object"
            ),
        ) from exc
    if not isinstance(obj, dict):
        raise TrainingDataError("line is not a JSON object", path=path, line=line)
    text = _require(obj, "text", str, path=path, line=line)
    intent = _require(obj, "intent", str, path=path, line=line)
    raw_entities = obj.get("entities", [])
    if not isinstance(raw_entities, list):
        raise TrainingDataError("'entities' must be a list", path=path, line=line, field="entities")
    spans = [_parse_entity(e, text, i, path, line) for i, e in enumerate(raw_entities)]
    return make_example(text, intent, spans, path=path, line=line)


def _parse_entity(
    obj: Any, text: str, index: int, path: Path | str | None, line: int | None
) -> EntitySpan:
    where = f"entities[{index}]"
    if not isinstance(obj, dict):
        raise TrainingDataError("entity is not a JSON object", path=path, line=line, field=where)
    start = _require(obj, "start", int, path=path, line=line, where=where)
    end = _require(obj, "end", int, path=path, line=line, where=where)
    entity = _require(obj, "entity", str, path=path, line=line, where=where)
    value = obj.get("value")
    if not 0 <= start < end <= len(text):
        raise TrainingDataError(
            f"span {start}:{end} is outside the text (length {len(text)})",
            path=path,
            line=line,
            field=where,
            hint="start/end are character offsets into text, end exclusive",
        )
    covered = text[start:end]
    if value is None:
        value = covered
    if not isinstance(value, str):
        value = str(value)
    if value != covered:
        raise TrainingDataError(
            f"entity '{entity}' value {value!r} does not match the text at {start}:{end} "
            f"({covered!r})",
            path=path,
            line=line,
            field=where,
            hint="value must equal text[start:end]; put a normalised value in 'canonical'",
        )
    canonical = obj.get("canonical")
    role = obj.get("role")
    group = obj.get("group")
    for key, item in (
        ("entity", entity),
        ("canonical", canonical),
        ("role", role),
        ("group", group),
    ):
        if isinstance(item, str):  # make_example checks these too, less precisely
            check_no_lone_surrogates(item, f"{where}.{key}", path, line)
    return EntitySpan(
        start=start,
        end=end,
        entity=entity,
        value=str(canonical) if canonical is not None else covered,
        role=str(role) if role is not None else None,
        group=str(group) if group is not None else None,
    )


def _require(
    obj: dict[str, Any],
    key: str,
    kind: type,
    *,
    path: Path | str | None,
    line: int | None,
    where: str | None = None,
) -> Any:
    field = f"{where}.{key}" if where else key
    if key not in obj:
        raise TrainingDataError(f"missing key '{key}'", path=path, line=line, field=field)
    value = obj[key]
    # bool is an int subclass; a true/false offset is a mistake, not an offset
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TrainingDataError(
            f"'{key}' must be {kind.__name__}, got {type(value).__name__}",
            path=path,
            line=line,
            field=field,
        )
    return value


def example_to_json(example: TrainingExample) -> dict[str, Any]:
    """The JSON object for one example, in the shared format (plus our optional keys)."""
    entities: list[dict[str, Any]] = []
    for sp in example.entities:
        covered = example.span_text(sp)
        ent: dict[str, Any] = {
            "start": sp.start,
            "end": sp.end,
            "entity": sp.entity,
            "value": covered,
        }
        if sp.value != covered:
            ent["canonical"] = sp.value
        if sp.role is not None:
            ent["role"] = sp.role
        if sp.group is not None:
            ent["group"] = sp.group
        entities.append(ent)
    return {"text": example.text, "intent": example.intent, "entities": entities}


def write_jsonl(data: TrainingData, path: Path | str) -> None:
    """Write the examples as JSONL (synonym/lookup/regex tables have no place there)."""
    with Path(path).open("w", encoding="utf-8") as out:
        for ex in data.examples:
            out.write(json.dumps(example_to_json(ex), ensure_ascii=False) + "\n")
