"""Rasa 3.x NLU YAML: the bot-project training format.

::

    version: "3.1"          # optional
    nlu:
    - intent: transfer_money
      examples: |
        - move [50 euros](amount) from [checking]{"entity": "account", "role": "from"}
    - intent: greet
      examples:             # Rasa's other form: a list of texts with optional metadata
      - text: hi there
        metadata: {sentiment: neutral}
    - synonym: savings
      examples: |
        - savings account
    - lookup: account
      examples: |
        - checking
    - regex: iban
      examples: |
        - [A-Z]{2}\\d{2}[A-Z0-9]{11,30}

Sections of a Rasa project that hold no NLU data (``stories``, ``rules``, ``responses``
and the other domain and config keys) are skipped, so a whole ``data/`` folder loads.
``metadata`` is read and ignored. Errors name the file and the line of the offending
item or example.

A ``text`` written as a quoted YAML scalar is taken exactly (spaces, control characters,
line separators); that is how :func:`to_rasa_yaml` writes examples a ``|`` block
cannot hold, so converting JSONL to YAML and back loses nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.annotation import format_annotated, parse_annotated
from intentbridge.understanding.data import (
    TrainingData,
    TrainingExample,
    make_example,
    read_utf8,
)

log = logging.getLogger(__name__)

_NLU_TOP_KEYS = frozenset({"version", "nlu"})
# Top-level keys of Rasa's other project files (domain, stories, rules, config): they
# hold no NLU training data, so a folder of Rasa files loads without moving any out.
_OTHER_RASA_KEYS = frozenset(
    {
        "stories",
        "rules",
        "responses",
        "slots",
        "forms",
        "actions",
        "entities",
        "intents",
        "session_config",
        "e2e_actions",
        "config",
        "recipe",
        "language",
        "pipeline",
        "policies",
        "assistant_id",
    }
)
_ITEM_KINDS = ("intent", "synonym", "lookup", "regex")
_ITEM_EXTRA_KEYS = frozenset({"examples", "metadata"})
_EXAMPLE_KEYS = frozenset({"text", "metadata"})
_NULL_TAG = "tag:yaml.org,2002:null"
_QUOTED = ("'", '"')
_BLOCK = ("|", ">")
# What a line of a ``|`` block cannot hold and read back unchanged: characters YAML
# refuses in a file, YAML line breaks other than "\n", and a byte-order mark.
_NOT_IN_BLOCK = re.compile(
    "[^\t\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]"
)


def read_rasa_yaml(path: Path | str) -> TrainingData:
    """Read a Rasa NLU YAML file (UTF-8, as :func:`~.data.read_utf8` reads it)."""
    p = Path(path)
    return parse_rasa_yaml(read_utf8(p), path=str(p))


def parse_rasa_yaml(source: str, *, path: str | None = None) -> TrainingData:
    """Parse Rasa NLU YAML text (``path`` is only used in error messages).

    Keys of Rasa's stories, rules, domain and config files are skipped with an INFO
    log record; any other unknown key is an error.
    """
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TrainingDataError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            path=path,
            line=mark.line + 1 if mark is not None else None,
        ) from exc
    data = TrainingData()
    if root is None:
        return data
    if not isinstance(root, yaml.MappingNode):
        raise TrainingDataError(
            "top level must be a mapping with an 'nlu' key", path=path, line=_line(root)
        )
    skipped: list[str] = []
    for key, (key_node, value_node) in _mapping(root, path).items():
        if key in _OTHER_RASA_KEYS:
            skipped.append(key)
        elif key not in _NLU_TOP_KEYS:
            raise TrainingDataError(
                f"unknown key '{key}'",
                path=path,
                line=_line(key_node),
                field=key,
                hint="an NLU file has 'version' and 'nlu'; Rasa's stories, rules, domain "
                "and config keys are skipped",
            )
        elif key == "nlu":
            if not isinstance(value_node, yaml.SequenceNode):
                if _is_null(value_node) or (
                    isinstance(value_node, yaml.ScalarNode) and value_node.value == ""
                ):
                    continue
                raise TrainingDataError(
                    "'nlu' must be a list of items", path=path, line=_line(value_node), field="nlu"
                )
            for item in value_node.value:
                _read_item(item, data, path)
    if skipped:
        log.info("%s: skipped %s (no NLU training data)", path or "<yaml>", ", ".join(skipped))
    return data


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _mapping(node: yaml.MappingNode, path: str | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The entries of a mapping by key; keys must be unique plain names."""
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or _is_null(key_node):
            raise TrainingDataError(
                "a key must be a name, not a list, mapping or null",
                path=path,
                line=_line(key_node),
                hint="write keys such as 'nlu', 'intent' or 'examples'",
            )
        key = str(key_node.value)
        if key in out:
            raise TrainingDataError(
                f"duplicate key '{key}' (first on line {_line(out[key][0])})",
                path=path,
                line=_line(key_node),
                field=key,
                hint="YAML keeps only the last value; split it into separate items",
            )
        out[key] = (key_node, value_node)
    return out


def _read_item(node: yaml.Node, data: TrainingData, path: str | None) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise TrainingDataError(
            "each 'nlu' item must be a mapping such as {intent: ..., examples: ...}",
            path=path,
            line=_line(node),
        )
    fields = _mapping(node, path)
    kinds = [k for k in _ITEM_KINDS if k in fields]
    if len(kinds) != 1:
        raise TrainingDataError(
            "an 'nlu' item needs exactly one of intent, synonym, lookup, regex"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            path=path,
            line=_line(node),
        )
    kind = kinds[0]
    for key, (key_node, _) in fields.items():
        if key != kind and key not in _ITEM_EXTRA_KEYS:
            raise TrainingDataError(
                f"unknown key '{key}' in {kind} item",
                path=path,
                line=_line(key_node),
                field=key,
                hint=f"a {kind} item has '{kind}', 'examples' and optionally 'metadata'",
            )
    name_node = fields[kind][1]
    if _is_null(name_node):
        raise TrainingDataError(
            f"'{kind}' is empty or null",
            path=path,
            line=_line(name_node),
            field=kind,
            hint=f"write a name; quote it if the name is literally null: {kind}: 'null'",
        )
    # any non-empty name, as in JSONL, so every intent converts both ways
    name = _text(name_node) if isinstance(name_node, yaml.ScalarNode) else ""
    if not name:
        raise TrainingDataError(
            f"'{kind}' must be a non-empty name", path=path, line=_line(name_node), field=kind
        )
    if "examples" not in fields:
        raise TrainingDataError(
            f"{kind} '{name}' has no 'examples'", path=path, line=_line(node), field="examples"
        )
    lines = _example_lines(fields["examples"][1], path)
    if kind == "intent":
        for text, lineno in lines:
            plain, spans = parse_annotated(text, path=path, line=lineno)
            data.examples.append(make_example(plain, name, spans, path=path, line=lineno))
    elif kind == "synonym":
        for text, _ in lines:
            data.synonyms[text] = name
    elif kind == "lookup":
        table = data.lookup_tables.setdefault(name, [])
        table.extend(t for t, _ in lines if t not in table)
    else:
        patterns = data.regexes.setdefault(name, [])
        for text, lineno in lines:
            try:
                re.compile(text)
            except re.error as exc:
                raise TrainingDataError(
                    f"invalid regex for '{name}': {exc}", path=path, line=lineno, field="examples"
                ) from exc
            if text not in patterns:
                patterns.append(text)


def _text(node: yaml.ScalarNode) -> str:
    # a quoted scalar is taken exactly; plain and block ones lose surrounding blanks
    # (and the block's final newline), as in Rasa
    value = str(node.value)
    return value if node.style in _QUOTED else value.strip()


def _example_lines(node: yaml.Node, path: str | None) -> list[tuple[str, int]]:
    """The examples of an item with their 1-based file line numbers."""
    if isinstance(node, yaml.SequenceNode):
        # Rasa's list form (``- text: ...`` with optional ``metadata``); a list of
        # plain strings is accepted too
        return [_list_example(item, path) for item in node.value]
    if not isinstance(node, yaml.ScalarNode):
        raise TrainingDataError(
            "examples must be a block string of '- ' lines",
            path=path,
            line=_line(node),
            field="examples",
        )
    if node.style == ">":
        raise TrainingDataError(
            "examples must be a literal block 'examples: |', not a folded one '>'",
            path=path,
            line=_line(node),
            field="examples",
            hint="a folded block joins all '- ' lines into one example",
        )
    # In a literal block the content starts on the line after the indicator.
    block = node.style == "|"
    first = _line(node) + (1 if block else 0)
    out = []
    for offset, raw in enumerate(str(node.value).split("\n")):
        stripped = raw.strip()
        if not stripped:
            continue
        lineno = first + offset if block else first
        if not stripped.startswith("- ") and stripped != "-":
            list_form = any(line.strip().startswith("- text:") for line in node.value.split("\n"))
            raise TrainingDataError(
                f"example line must start with '- ': {stripped!r}",
                path=path,
                line=lineno,
                field="examples",
                hint="for '- text:' examples with metadata, remove the '|' after 'examples:'"
                if list_form
                else None,
            )
        text = stripped[2:].strip() if stripped != "-" else ""
        if text:
            out.append((text, lineno))
    return out


def _list_example(item: yaml.Node, path: str | None) -> tuple[str, int]:
    text_node = item
    if isinstance(item, yaml.MappingNode):
        fields = _mapping(item, path)
        for key, (key_node, _) in fields.items():
            if key not in _EXAMPLE_KEYS:
                raise TrainingDataError(
                    f"unknown key '{key}' in example",
                    path=path,
                    line=_line(key_node),
                    field=key,
                    hint="an example in list form has 'text' and optionally 'metadata'",
                )
        if "text" not in fields:
            raise TrainingDataError(
                "example has no 'text'", path=path, line=_line(item), field="examples"
            )
        text_node = fields["text"][1]
    if not isinstance(text_node, yaml.ScalarNode) or _is_null(text_node):
        raise TrainingDataError(
            "an example must be a string or {text: ..., metadata: ...}",
            path=path,
            line=_line(text_node),
            field="examples",
        )
    return _text(text_node), _line(text_node) + (1 if text_node.style in _BLOCK else 0)


def to_rasa_yaml(data: TrainingData) -> str:
    """Render training data as Rasa 3.x NLU YAML (inverse of :func:`parse_rasa_yaml`).

    Examples go in a ``|`` block; an intent with an example the block cannot hold
    (empty, surrounding blanks, line breaks, control characters) is written in Rasa's
    list form with double-quoted, escaped ``text`` scalars instead. Text containing
    ``[`` or ``]`` outside an annotation cannot be written and raises
    :class:`TrainingDataError` naming the example.
    """
    by_intent: dict[str, list[str]] = {}
    for number, ex in enumerate(data.examples, start=1):
        by_intent.setdefault(ex.intent, []).append(_annotated(ex, number))
    lines = ['version: "3.1"', "nlu:"]
    for intent, annotated in by_intent.items():
        lines.extend(_item("intent", intent, annotated))
    canon: dict[str, list[str]] = {}
    for variant, canonical in data.synonyms.items():
        canon.setdefault(canonical, []).append(variant)
    for canonical, variants in canon.items():
        lines.extend(_item("synonym", canonical, variants))
    for name, values in data.lookup_tables.items():
        lines.extend(_item("lookup", name, values))
    for name, patterns in data.regexes.items():
        lines.extend(_item("regex", name, patterns))
    return "\n".join(lines) + "\n"


def write_rasa_yaml(data: TrainingData, path: Path | str) -> None:
    """Write training data as a Rasa NLU YAML file."""
    Path(path).write_text(to_rasa_yaml(data), encoding="utf-8")


def _annotated(ex: TrainingExample, number: int) -> str:
    where = f"example {number} ({ex.text!r}, intent {ex.intent!r})"
    try:
        line = format_annotated(ex.text, ex.entities)
        # refuse rather than write a file that reads back as different data
        spans = tuple(sorted(ex.entities, key=lambda sp: (sp.start, sp.end)))
        same = parse_annotated(line) == (ex.text, spans)
    except TrainingDataError as exc:
        raise TrainingDataError(
            f"{where} cannot be written as Rasa YAML: {exc.message}",
            field=exc.field,
            hint=exc.hint,
        ) from exc
    if not same:
        raise TrainingDataError(
            f"{where} cannot be written as Rasa YAML: its annotation {line!r} would "
            "read back differently",
            field="entities",
            hint="keep such examples in JSONL",
        )
    return line


def _item(kind: str, name: str, items: list[str]) -> list[str]:
    out = [f"- {kind}: {_scalar(name)}"]
    if all(_fits_block(item) for item in items):
        out.append("  examples: |")
        out.extend("    - " + item for item in items)
    else:
        # Rasa reads ``text`` mappings for intents only; for the tables our reader
        # takes a list of strings
        prefix = "  - text: " if kind == "intent" else "  - "
        out.append("  examples:")
        out.extend(prefix + _quoted(item) for item in items)
    return out


def _fits_block(line: str) -> bool:
    """Whether ``line`` reads back unchanged as a ``- `` line of a ``|`` block."""
    return bool(line) and line == line.strip() and not _NOT_IN_BLOCK.search(line)


def _quoted(value: str) -> str:
    """A double-quoted YAML scalar on one line: every character YAML escapes is escaped."""
    dumped = yaml.safe_dump(value, default_style='"', width=float("inf"), allow_unicode=True)
    return str(dumped).rstrip("\n")


def _scalar(value: str) -> str:
    # let PyYAML decide on quoting so names like "yes" or "1.0" stay strings; fall back
    # to double quotes where its choice would span lines or not read back
    if _fits_block(value):
        dumped = str(yaml.safe_dump(value, width=float("inf"), allow_unicode=True))
        text = dumped.removesuffix("\n").removesuffix("\n...").strip()
        if "\n" not in text and yaml.safe_load(text) == value:
            return text
    return _quoted(value)


def jsonl_loss_note(data: TrainingData, *, limit: int = 10) -> str | None:
    """What converting ``data`` to JSONL drops, in one line, or ``None`` if nothing.

    JSONL holds examples only, so synonyms, lookup tables and regexes are named here
    (the first ``limit`` of each) for ``intentbridge nlu convert`` to report.

    >>> jsonl_loss_note(TrainingData(regexes={"iban": ["[A-Z]{2}"]}))
    "JSONL has no place for 1 regex: 'iban' (1 pattern); they were not written. ..."
    """
    parts: list[str] = []
    if data.synonyms:
        pairs = [f"{v!r} → {c!r}" for v, c in data.synonyms.items()]
        parts.append(_count(len(pairs), "synonym") + ": " + _first(pairs, limit))
    if data.lookup_tables:
        tables = [f"{n!r} ({_count(len(v), 'value')})" for n, v in data.lookup_tables.items()]
        parts.append(_count(len(tables), "lookup table") + ": " + _first(tables, limit))
    if data.regexes:
        regexes = [f"{n!r} ({_count(len(p), 'pattern')})" for n, p in data.regexes.items()]
        parts.append(_count(len(regexes), "regex") + ": " + _first(regexes, limit))
    if not parts:
        return None
    return (
        f"JSONL has no place for {'; '.join(parts)}; they were not written. "
        "Keep the YAML file as the source of truth (train on it, or on it and the JSONL "
        "together) rather than converting back from the JSONL."
    )


def _count(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("x") else "s")
    return f"{n} {noun if n == 1 else plural}"


def _first(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
