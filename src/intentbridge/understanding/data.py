"""Training data: annotated examples plus the tables rule extractors use.

A :class:`TrainingData` holds what a bot project (or a public data set) teaches the
understanding layer: example messages with their intent and entity spans, entity
synonyms, lookup tables and named regexes. Loaders for the two file formats live in
:mod:`intentbridge.understanding.jsonl` and :mod:`intentbridge.understanding.rasa`;
:func:`load_training_data` picks one by file extension.

>>> data = load_training_data(["data/nlu.yml"])
>>> data.intents
('check_balance', 'transfer_money')
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from intentbridge.errors import TrainingDataError


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """An annotated entity in a training example.

    ``start``/``end`` are character offsets into the example text (end exclusive).
    ``value`` is the canonical value: the covered text itself, or the synonym it
    stands for (``[savings account](account:savings)`` has value ``"savings"``).
    """

    start: int
    end: int
    entity: str
    value: str
    role: str | None = None
    group: str | None = None

    @property
    def label(self) -> str:
        """The tagger label: ``entity`` or ``entity#role`` when a role is annotated."""
        return f"{self.entity}#{self.role}" if self.role else self.entity


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One example message: its text, intent and entity spans (sorted by start)."""

    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()

    def span_text(self, span: EntitySpan) -> str:
        """The substring of :attr:`text` a span covers."""
        return self.text[span.start : span.end]


@dataclass(slots=True)
class TrainingData:
    """Examples plus synonyms, lookup tables and regexes.

    ``synonyms`` maps a variant (compared case-insensitively) to its canonical value,
    ``lookup_tables`` an entity name to the values it may take, and ``regexes`` a
    name to one or more patterns; a regex whose name is an entity extracts it.
    """

    examples: list[TrainingExample] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    lookup_tables: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def intents(self) -> tuple[str, ...]:
        """The distinct intent names, sorted."""
        return tuple(sorted({ex.intent for ex in self.examples}))

    @property
    def entity_names(self) -> tuple[str, ...]:
        """The distinct annotated entity names, sorted."""
        return tuple(sorted({sp.entity for ex in self.examples for sp in ex.entities}))

    @property
    def has_entities(self) -> bool:
        """Whether any example is annotated with an entity."""
        return any(ex.entities for ex in self.examples)

    def all_synonyms(self) -> dict[str, str]:
        """Explicit synonyms plus those implied by annotated values (lower-cased keys).

        ``[savings account](account:savings)`` implies ``"savings account" → "savings"``,
        as in Rasa.
        """
        table = {k.lower(): v for k, v in self.synonyms.items()}
        for ex in self.examples:
            for sp in ex.entities:
                text = ex.span_text(sp)
                if text != sp.value:
                    table.setdefault(text.lower(), sp.value)
        return table

    def merge(self, other: TrainingData) -> TrainingData:
        """A new :class:`TrainingData` holding both; ``other`` wins on table clashes."""
        lookups = {k: list(v) for k, v in self.lookup_tables.items()}
        for name, values in other.lookup_tables.items():
            lookups.setdefault(name, []).extend(v for v in values if v not in lookups[name])
        regexes = {k: list(v) for k, v in self.regexes.items()}
        for name, patterns in other.regexes.items():
            regexes.setdefault(name, []).extend(p for p in patterns if p not in regexes[name])
        return TrainingData(
            examples=[*self.examples, *other.examples],
            synonyms={**self.synonyms, **other.synonyms},
            lookup_tables=lookups,
            regexes=regexes,
        )


def make_example(
    text: str,
    intent: str,
    entities: Iterable[EntitySpan] = (),
    *,
    path: Path | str | None = None,
    line: int | None = None,
) -> TrainingExample:
    """Build a :class:`TrainingExample`, checking spans lie inside the text.

    Raises :class:`TrainingDataError` (with ``path``/``line`` when given) for an empty
    intent, a span outside the text or empty, a lone surrogate in any string, or a
    '#' in an entity or role name (the tagger's labels are ``entity#role``:
    "price#usd" would come back as the entity "price" with the role "usd").
    """
    if not intent:
        raise TrainingDataError("example has an empty intent", path=path, line=line, field="intent")
    check_no_lone_surrogates(text, "text", path, line)
    check_no_lone_surrogates(intent, "intent", path, line)
    spans = tuple(sorted(entities, key=lambda s: (s.start, s.end)))
    for sp in spans:
        for name in (sp.entity, sp.value, sp.role, sp.group):
            if name is not None:
                check_no_lone_surrogates(name, "entities", path, line)
        if not 0 <= sp.start < sp.end <= len(text):
            raise TrainingDataError(
                f"entity '{sp.entity}' span {sp.start}:{sp.end} is outside the text "
                f"(length {len(text)})",
                path=path,
                line=line,
                field="entities",
                hint="start/end are character offsets into text, end exclusive",
            )
        if not sp.entity:
            raise TrainingDataError(
                "entity has an empty name", path=path, line=line, field="entities"
            )
        problem = label_name_problem(sp.entity, sp.role)
        if problem is not None:
            raise TrainingDataError(
                problem, path=path, line=line, field="entities", hint=LABEL_NAME_HINT
            )
    return TrainingExample(text=text, intent=intent, entities=spans)


def check_no_lone_surrogates(
    value: str, field: str, path: Path | str | None, line: int | None
) -> None:
    """Refuse a lone surrogate in ``value``, naming ``field``.

    A JSON or YAML escape such as "\\ud800" without its pair decodes to a lone
    surrogate: not a character, so nothing downstream (the CRF, saving the model)
    can encode it.
    """
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TrainingDataError(
            f"contains a lone surrogate (U+{ord(value[exc.start]):04X}) at character "
            f"{exc.start}, which is not a character",
            path=path,
            line=line,
            field=field,
            hint="write the character itself, or both halves of a \\ud83d\\ude00-style pair",
        ) from None


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 training file (a leading byte order mark is skipped).

    Lines end at "\\n", "\\r\\n" or "\\r", as in a file opened in text mode. A file that
    cannot be read or does not decode is a :class:`TrainingDataError` naming the file
    and, for bad bytes, the line.
    """
    try:
        data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    except OSError as exc:  # also a directory named like a data file
        raise TrainingDataError(f"cannot read file: {exc.strerror}", path=path) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc.start) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _not_utf8(path: Path, data: bytes, at: int) -> TrainingDataError:
    """The error for a file whose byte ``at`` is not UTF-8, naming its line."""
    hint = "re-save the file with UTF-8 encoding"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return TrainingDataError("the file is UTF-16, not UTF-8", path=path, line=1, hint=hint)
    line = data.count(b"\n", 0, at) + 1
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    return TrainingDataError(
        f"the file is not valid UTF-8 (byte 0x{data[at]:02x} at column {column})",
        path=path,
        line=line,
        hint=hint,
    )


#: How to fix a name :func:`label_name_problem` refuses.
LABEL_NAME_HINT = (
    "the tagger's labels are 'entity#role', so '#' cannot be part of a name: rename "
    "the entity (e.g. 'price_usd'), or annotate the part after '#' as its role"
)


def label_name_problem(entity: str, role: str | None) -> str | None:
    """Why ``entity`` (with ``role``) cannot be a tagger label, or None when it can.

    >>> label_name_problem("price#usd", None)
    "entity name 'price#usd' contains '#'"
    """
    if "#" in entity:
        return f"entity name {entity!r} contains '#'"
    if role is not None and "#" in role:
        return f"role {role!r} of entity {entity!r} contains '#'"
    return None


def load_training_data(paths: Sequence[Path | str] | Path | str) -> TrainingData:
    """Load and merge training data from files and directories.

    ``.jsonl``/``.json`` files are read as one JSON object a line (the shared format),
    ``.yml``/``.yaml`` as Rasa 3.x NLU YAML. Directories are searched recursively for
    those extensions, in sorted order so results do not depend on the file system.

    >>> data = load_training_data(["data/"])
    """
    # imported here because both format modules import this one
    from intentbridge.understanding.jsonl import read_jsonl
    from intentbridge.understanding.rasa import read_rasa_yaml

    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _EXTENSIONS)
            )
        elif p.is_file():
            files.append(p)
        else:
            raise TrainingDataError("no such file or directory", path=p)
    if not files:
        raise TrainingDataError(
            "no training data files found",
            path=", ".join(str(p) for p in paths),
            hint="expected .jsonl, .json, .yml or .yaml files",
        )
    data = TrainingData()
    for f in files:
        suffix = f.suffix.lower()
        if suffix in (".jsonl", ".json"):
            part = read_jsonl(f)
        elif suffix in (".yml", ".yaml"):
            part = read_rasa_yaml(f)
        else:
            raise TrainingDataError(
                f"unknown training data extension '{f.suffix}'",
                path=f,
                hint="use .jsonl, .json, .yml or .yaml",
            )
        data = data.merge(part)
    return data


def save_training_data(data: TrainingData, path: Path | str) -> None:
    """Write training data, choosing the format by extension (JSONL or Rasa YAML)."""
    from intentbridge.understanding.jsonl import write_jsonl
    from intentbridge.understanding.rasa import write_rasa_yaml

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        write_jsonl(data, p)
    elif suffix in (".yml", ".yaml"):
        write_rasa_yaml(data, p)
    else:
        raise TrainingDataError(
            f"unknown training data extension '{p.suffix}'",
            path=p,
            hint="use .jsonl, .json, .yml or .yaml",
        )


_EXTENSIONS = (".jsonl", ".json", ".yml", ".yaml")
