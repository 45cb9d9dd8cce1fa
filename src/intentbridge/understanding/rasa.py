"""Rasa 3.x NLU YAML: the bot-project training format.

::

    version: "3.1"          # optional
    nlu:
    - intent: transfer_money
      examples: |
        - move [50 euros](amount) from [checking]{"entity": "account", "role": "from"}
    - synonym: savings
      examples: |
        - savings account
    - lookup: account
      examples: |
        - checking
    - regex: iban
      examples: |
        - [A-Z]{2}\\d{2}[A-Z0-9]{11,30}

Errors name the file and the line of the offending item or example.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from intentbridge.errors import TrainingDataError
from intentbridge.understanding.annotation import format_annotated, parse_annotated
from intentbridge.understanding.data import TrainingData, TrainingExample, make_example

_TOP_KEYS = frozenset({"version", "nlu"})
_ITEM_KINDS = ("intent", "synonym", "lookup", "regex")
_ITEM_EXTRA_KEYS = frozenset({"examples", "metadata"})


def read_rasa_yaml(path: Path | str) -> TrainingData:
    """Read a Rasa NLU YAML file."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrainingDataError(f"cannot read file: {exc.strerror}", path=p) from exc
    return parse_rasa_yaml(source, path=str(p))


def parse_rasa_yaml(source: str, *, path: str | None = None) -> TrainingData:
    """Parse Rasa NLU YAML text (``path`` is only used in error messages)."""
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
    for key_node, value_node in root.value:
        key = key_node.value
        if key not in _TOP_KEYS:
            raise TrainingDataError(
                f"unknown key '{key}'",
                path=path,
                line=_line(key_node),
                field=str(key),
                hint="an NLU file has 'version' and 'nlu'; keep stories, rules and "
                "responses in other files",
            )
        if key == "nlu":
            if not isinstance(value_node, yaml.SequenceNode):
                if isinstance(value_node, yaml.ScalarNode) and value_node.value in (
                    "",
                    "null",
                    "~",
                ):
                    continue
                raise TrainingDataError(
                    "'nlu' must be a list of items", path=path, line=_line(value_node), field="nlu"
                )
            for item in value_node.value:
                _read_item(item, data, path)
    return data


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _read_item(node: yaml.Node, data: TrainingData, path: str | None) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise TrainingDataError(
            "each 'nlu' item must be a mapping such as {intent: ..., examples: ...}",
            path=path,
            line=_line(node),
        )
    fields: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        fields[str(key_node.value)] = value_node
    kinds = [k for k in _ITEM_KINDS if k in fields]
    if len(kinds) != 1:
        raise TrainingDataError(
            "an 'nlu' item needs exactly one of intent, synonym, lookup, regex"
            + (f" (found {', '.join(kinds)})" if kinds else ""),
            path=path,
            line=_line(node),
        )
    kind = kinds[0]
    for key in fields:
        if key != kind and key not in _ITEM_EXTRA_KEYS:
            raise TrainingDataError(
                f"unknown key '{key}' in {kind} item",
                path=path,
                line=_key_line(node, key),
                field=key,
                hint=f"a {kind} item has '{kind}' and 'examples'",
            )
    name_node = fields[kind]
    if not isinstance(name_node, yaml.ScalarNode) or not str(name_node.value).strip():
        raise TrainingDataError(
            f"'{kind}' must be a non-empty name", path=path, line=_line(name_node), field=kind
        )
    name = str(name_node.value).strip()
    if "examples" not in fields:
        raise TrainingDataError(
            f"{kind} '{name}' has no 'examples'", path=path, line=_line(node), field="examples"
        )
    lines = _example_lines(fields["examples"], path)
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


def _key_line(node: yaml.MappingNode, key: str) -> int:
    for key_node, _ in node.value:
        if key_node.value == key:
            return _line(key_node)
    return _line(node)


def _example_lines(node: yaml.Node, path: str | None) -> list[tuple[str, int]]:
    """The ``- `` lines of an examples block with their 1-based file line numbers."""
    if isinstance(node, yaml.SequenceNode):
        # a YAML list of strings is accepted too, though Rasa writes a block string
        out: list[tuple[str, int]] = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode):
                raise TrainingDataError(
                    "examples must be strings", path=path, line=_line(item), field="examples"
                )
            out.append((str(item.value), _line(item)))
        return out
    if not isinstance(node, yaml.ScalarNode):
        raise TrainingDataError(
            "examples must be a block string of '- ' lines",
            path=path,
            line=_line(node),
            field="examples",
        )
    # In a literal/folded block the content starts on the line after the indicator.
    first = _line(node) + (1 if node.style in ("|", ">") else 0)
    out = []
    for offset, raw in enumerate(str(node.value).split("\n")):
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("- ") and stripped != "-":
            raise TrainingDataError(
                f"example line must start with '- ': {stripped!r}",
                path=path,
                line=first + offset if node.style in ("|", ">") else first,
                field="examples",
            )
        text = stripped[2:].strip() if stripped != "-" else ""
        if text:
            out.append((text, first + offset if node.style in ("|", ">") else first))
    return out


def to_rasa_yaml(data: TrainingData) -> str:
    """Render training data as Rasa 3.x NLU YAML (inverse of :func:`parse_rasa_yaml`)."""
    by_intent: dict[str, list[TrainingExample]] = {}
    for ex in data.examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in by_intent.items():
        lines.append(f"- intent: {_scalar(intent)}")
        lines.append("  examples: |")
        for ex in examples:
            lines.append("    - " + _one_line(format_annotated(ex.text, ex.entities)))
    canon: dict[str, list[str]] = {}
    for variant, canonical in data.synonyms.items():
        canon.setdefault(canonical, []).append(variant)
    for canonical, variants in canon.items():
        lines.extend(_block("synonym", canonical, variants))
    for name, values in data.lookup_tables.items():
        lines.extend(_block("lookup", name, values))
    for name, patterns in data.regexes.items():
        lines.extend(_block("regex", name, patterns))
    return "\n".join(lines) + "\n"


def write_rasa_yaml(data: TrainingData, path: Path | str) -> None:
    """Write training data as a Rasa NLU YAML file."""
    Path(path).write_text(to_rasa_yaml(data), encoding="utf-8")


def _block(kind: str, name: str, items: list[str]) -> list[str]:
    out = [f"- {kind}: {_scalar(name)}", "  examples: |"]
    out.extend("    - " + _one_line(item) for item in items)
    return out


def _scalar(value: str) -> str:
    # let PyYAML decide on quoting so names like "yes" or "1.0" stay strings
    dumped: Any = yaml.safe_dump(value, default_style=None, width=10_000)
    text = str(dumped).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _one_line(text: str) -> str:
    if "\n" in text or text != text.strip():
        raise TrainingDataError(
            f"example {text!r} has a line break or surrounding spaces, which a block "
            "string cannot hold",
            hint="use the JSONL format for such examples",
        )
    return text
