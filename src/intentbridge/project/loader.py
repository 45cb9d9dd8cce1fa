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
from intentbridge.text import MIN_SECRET_LENGTH, mask_secrets

PROJECT_FILE = "bot.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Location = tuple[str | int, ...]
# aliases may repeat a node many times ("billion laughs"): bound what they expand to
MAX_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


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
    text = read_text_file(config_path)
    config = parse_config(text, config_path, os.environ if env is None else env)
    return BotProject(root=config_path.parent.resolve(), config=config, config_path=config_path)


def read_text_file(
    path: Path, hint: str = "bot.yaml must be a readable file inside the project folder"
) -> str:
    """A file's text; :class:`ConfigError` (file, line of the bad byte) when it cannot
    be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the file: {exc.strerror or exc}", path=path, hint=hint
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
            path=path,
            line=line,
            hint="save the file as UTF-8",
        ) from None


def parse_config(text: str, path: Path | str, env: Mapping[str, str]) -> BotConfig:
    """Validate a ``bot.yaml`` text; every error names the file, line and field."""
    used: set[str] = set()  # environment values put into the text: never echo them
    try:
        return _parse(text, path, env, used)
    except ConfigError as exc:
        if not any(len(v) >= MIN_SECRET_LENGTH for v in used):
            raise
        raise ConfigError(
            mask_secrets(exc.message, used),
            path=exc.path,
            line=exc.line,
            field=exc.field,
            hint=mask_secrets(exc.hint, used) if exc.hint else None,
        ) from None


def yaml_data(
    text: str,
    path: Path | str,
    env: Mapping[str, str] | None = None,
    used: set[str] | None = None,
) -> tuple[Any, dict[Location, int]]:
    """Plain data from YAML text, and the line of each location in it.

    bot.yaml's limits hold: at most :data:`MAX_VALUES` values after expanding
    aliases, no alias cycles, no merge keys, no tags, no duplicate keys. With ``env``,
    ``${VAR}`` in text is substituted (the values used are added to ``used``);
    without, text stays as written. An empty document is ``None``. Every error is a
    :class:`ConfigError` naming the file and line.
    """
    too_deep = ConfigError("nested too deeply", path=path, hint="flatten the lists and mappings")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise too_deep from None
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
    lines: dict[Location, int] = {}
    if node is None:
        return None, lines
    try:
        data = _Builder(lines, path, env, set() if used is None else used).build(node, ())
    except RecursionError:
        raise too_deep from None
    return data, lines


def validation_error(
    exc: ValidationError,
    path: Path | str,
    lines: Mapping[Location, int],
    hint: str | None = None,
) -> ConfigError:
    """The first of pydantic's errors as a :class:`ConfigError` with file, line and
    field; ``hint`` when there is no more specific one.

    Of several errors, the one deepest in the data: a value that fits no member of a
    union gets an error per member, and the deepest says what is wrong inside the
    member it was meant as ("regex: not a regular expression", not "bot: should be
    text").
    """
    errors = exc.errors()
    err = max(errors, key=lambda e: len(e["loc"]))  # the first of the deepest
    loc = tuple(err["loc"])
    return ConfigError(
        _pydantic_message(err),
        path=path,
        line=_line_for(loc, lines),
        field=_dotted(loc),
        hint=_hint_for(err) or hint,
    )


def _parse(text: str, path: Path | str, env: Mapping[str, str], used: set[str]) -> BotConfig:
    data, lines = yaml_data(text, path, env, used)
    if data is None:
        raise ConfigError("the file is empty", path=path, hint="declare at least 'operations'")
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=path, line=1)
    try:
        config = BotConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path, lines) from None
    problems = config.reference_errors()
    if problems:
        loc, message = problems[0]
        raise ConfigError(message, path=path, line=_line_for(loc, lines), field=_dotted(loc))
    return config


class _Builder:
    """Builds plain Python data from YAML nodes, recording each location's line."""

    def __init__(
        self,
        lines: dict[Location, int],
        path: Path | str,
        env: Mapping[str, str] | None,
        used: set[str],
    ) -> None:
        self.lines = lines
        self.path = path
        self.env = env
        self.used = used
        self.count = 0
        self.open: set[int] = set()  # nodes being built: an alias to one is a cycle
        # constructs scalar nodes; one per document, as it remembers every node it built
        self.scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_VALUES:
            raise self._error(
                node, loc, f"more than {MAX_VALUES} values after expanding aliases (*name)"
            )
        if id(node) in self.open:
            raise self._error(node, loc, "an alias (*name) refers to a value that contains it")
        if isinstance(node, yaml.MappingNode):
            self.open.add(id(node))
            try:
                return self._mapping(node, loc)
            finally:
                self.open.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.open.add(id(node))
            try:
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            finally:
                self.open.discard(id(node))
        value = self._scalar(node, loc)
        if self.env is not None and isinstance(value, str) and "${" in value:
            return self._substitute(value, loc, self.env)
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise self._error(
                    key_node,
                    loc,
                    "merge keys (<<) are not supported",
                    hint="write the settings out in each place",
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(key_node, loc, "a key must be plain text, not a list or mapping")
            key = self._scalar(key_node, loc)
            if key in out:
                raise self._error(
                    key_node,
                    (*loc, key),
                    f"duplicate key {key!r}",
                    hint="each key may appear once in a mapping",
                )
            out[key] = self.build(value_node, (*loc, key))
        return out

    def _scalar(self, node: yaml.Node, loc: Location) -> Any:
        try:
            return self.scalars.construct_object(node)
        except yaml.YAMLError:
            raise self._error(
                node,
                loc,
                f"unsupported YAML tag {node.tag!r}",
                hint="remove the tag; the file holds plain text, numbers, lists and mappings",
            ) from None

    def _substitute(self, value: str, loc: Location, env: Mapping[str, str]) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                self.used.add(env[name])
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set",
                path=self.path,
                line=self.lines.get(loc),
                field=_dotted(loc),
                hint=f"export {name}=... or write ${{{name}:-default}}",
            )

        return _ENV.sub(replace, value)

    def _error(
        self, node: yaml.Node, loc: Location, message: str, hint: str | None = None
    ) -> ConfigError:
        return ConfigError(
            message, path=self.path, line=node.start_mark.line + 1, field=_dotted(loc), hint=hint
        )


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
