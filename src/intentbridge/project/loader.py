"""Load ``bot.yaml``: YAML with line numbers, ``${ENV}`` substitution, precise errors.

>>> project = load_project("examples/banking")
>>> project.config.operations["check_balance"].path
'/customers/{customer}/accounts'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from intentbridge.errors import ConfigError
from intentbridge.project.schema import BotConfig

PROJECT_FILE = "bot.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Location = tuple[str | int, ...]
_SCALARS = yaml.SafeLoader("")  # constructs scalar nodes; holds no per-document state


@dataclass(frozen=True)
class BotProject:
    """A loaded bot project: its folder, validated configuration and data paths."""

    root: Path
    config: BotConfig
    config_path: Path

    @property
    def training_paths(self) -> list[Path]:
        return [self.root / p for p in self.config.nlu.data]

    @property
    def model_dir(self) -> Path:
        return self.root / self.config.nlu.model_dir


def load_project(path: str | Path, env: Mapping[str, str] | None = None) -> BotProject:
    """Load the project in folder ``path`` (or the ``bot.yaml`` file ``path``)."""
    path = Path(path)
    config_path = path if path.is_file() else path / PROJECT_FILE
    if not config_path.exists():
        raise ConfigError(
            "no bot.yaml here",
            path=config_path,
            hint="run 'intentbridge init DIR' to create a project, or pass the project folder",
        )
    text = config_path.read_text(encoding="utf-8")
    config = parse_config(text, config_path, os.environ if env is None else env)
    return BotProject(root=config_path.parent.resolve(), config=config, config_path=config_path)


def parse_config(text: str, path: Path | str, env: Mapping[str, str]) -> BotConfig:
    """Validate a ``bot.yaml`` text; every error names the file, line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"not valid YAML: {problem}",
            path=path,
            line=line,
            hint="check indentation and quoting around that line",
        ) from exc
    if node is None:
        raise ConfigError("the file is empty", path=path, hint="declare at least 'operations'")
    lines: dict[Location, int] = {}
    data = _construct(node, (), lines, path, env)
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=path, line=1)
    try:
        config = BotConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        raise ConfigError(
            _pydantic_message(err),
            path=path,
            line=_line_for(loc, lines),
            field=_dotted(loc),
            hint=_hint_for(err),
        ) from None
    problems = config.reference_errors()
    if problems:
        loc, message = problems[0]
        raise ConfigError(message, path=path, line=_line_for(loc, lines), field=_dotted(loc))
    return config


def _construct(
    node: yaml.Node,
    loc: Location,
    lines: dict[Location, int],
    path: Path | str,
    env: Mapping[str, str],
) -> Any:
    """Build plain Python data from a YAML node, recording each location's line."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _SCALARS.construct_object(key_node)  # plain scalar keys
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    path=path,
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*loc, key)),
                    hint="each key may appear once in a mapping",
                )
            out[key] = _construct(value_node, (*loc, key), lines, path, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines, path, env) for i, item in enumerate(node.value)]
    value = _SCALARS.construct_object(node)
    if isinstance(value, str) and "${" in value:
        return _substitute(value, loc, lines, path, env)
    return value


def _substitute(
    value: str,
    loc: Location,
    lines: dict[Location, int],
    path: Path | str,
    env: Mapping[str, str],
) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name} is not set",
            path=path,
            line=lines.get(loc),
            field=_dotted(loc),
            hint=f"export {name}=... or write ${{{name}:-default}}",
        )

    return _ENV.sub(replace, value)


def _line_for(loc: Location, lines: Mapping[Location, int]) -> int | None:
    # pydantic adds union tags and model names to locations; walk back to a known one
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _dotted(loc: Location) -> str:
    return ".".join(str(part) for part in loc if not _is_union_tag(part))


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and ("[" in part or part in _AUTH_TAGS)


_AUTH_TAGS = {"none", "bearer", "api_key", "oauth2_client_credentials", "hmac_signature"}


def _pydantic_message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "this field is required"
    if kind == "union_tag_invalid":
        expected = err.get("ctx", {}).get("expected_tags", "")
        given = err.get("ctx", {}).get("tag", "?")  # never echo the whole input: secrets
        return f"unknown type {given!r}; expected one of {expected}"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def _hint_for(err: Mapping[str, Any]) -> str | None:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "check the spelling; see docs/bot-yaml.md for the fields allowed here"
    if kind == "missing":
        return "add it"
    if kind == "string_type" and isinstance(err.get("input"), bool):
        return "YAML reads yes/no/on/off/true/false as booleans; put the text in quotes"
    return None
