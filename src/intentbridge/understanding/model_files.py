"""A saved model's folder: writing it in one swap, and reading damaged files as errors.

:meth:`NluModel.save <intentbridge.understanding.model.NluModel.save>` writes into a new
sibling folder and swaps it in (:func:`swap_in`), so a failed save leaves what was there
and a model saved over an earlier one keeps none of its files; it never replaces a
folder that is not a model (:func:`refuse_to_replace`). :meth:`NluModel.load` reads each
file inside :func:`reading`, which turns what a truncated or hand-edited file makes
json, numpy, zipfile or a loader raise into a :class:`ModelError` naming the file.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import shutil
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from intentbridge.errors import ModelError

#: what reading a truncated, overwritten or hand-edited file makes json, numpy,
#: zipfile and the loaders raise; each becomes a ModelError naming the file
CORRUPT_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,  # also json.JSONDecodeError and UnicodeDecodeError
    TypeError,
    LookupError,
    AttributeError,
    ArithmeticError,
    EOFError,
    MemoryError,  # an array header that claims a huge shape
    RecursionError,
    zipfile.BadZipFile,
    struct.error,
    pickle.UnpicklingError,
)


def check_save_target(directory: Path | str) -> None:
    """Raise :class:`ModelError` unless :meth:`NluModel.save` can write ``directory``.

    Call it before training, so a bad ``--out`` fails in a second rather than after
    the training. Accepted: a missing folder whose nearest existing parent can be
    written to, an empty folder, an earlier model (to be replaced). Refused: a file,
    a folder that is not a model.
    """
    root = Path(directory)
    target = Path(os.path.realpath(root))
    refuse_to_replace(root, target)
    try:
        ancestor = target.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise ModelError(
                f"cannot write the model to {root}: {ancestor} is a file, not a folder; "
                "choose another path"
            )
    except OSError as exc:
        raise ModelError(f"cannot write the model to {root}: {os_reason(exc)}") from exc
    try:
        # permission bits do not tell (root may write anywhere, but not into /proc)
        new_sibling(ancestor / "intentbridge-write-check", "probe").rmdir()
    except OSError as exc:
        raise ModelError(
            f"cannot write the model to {root}: cannot create anything in {ancestor} "
            f"({exc.strerror or exc}); choose a folder you can write to"
        ) from exc


def refuse_to_replace(root: Path, target: Path) -> None:
    """Raise unless ``target`` is missing, an empty folder or an earlier model.

    An earlier model is a folder with ``metadata.json`` and ``intent/``: both, since
    metadata.json alone is a common name. Other files in it (a bot project keeps its
    training fingerprint there) go with it.
    """
    try:
        if target.is_dir():
            if not any(target.iterdir()) or (
                (target / "metadata.json").is_file() and (target / "intent").is_dir()
            ):
                return
            raise ModelError(
                f"{root} is a folder that does not hold a model (no metadata.json and "
                "intent/); saving would delete its files: choose a new or empty folder, "
                "or remove it first"
            )
        if target.exists():
            raise ModelError(
                f"{root} exists and is not a folder; choose another path for the model"
            )
    except OSError as exc:
        raise ModelError(f"cannot write the model to {root}: {os_reason(exc)}") from exc


def new_sibling(path: Path, purpose: str) -> Path:
    """Create and return a new hidden directory beside ``path``."""
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.{purpose}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` where ``target`` is (two renames when there is one)."""
    if not target.exists():
        staging.rename(target)
        return
    old = new_sibling(target, "old")
    old.rmdir()
    target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn what a damaged ``path`` makes a reader raise into a ModelError naming it."""
    try:
        yield
    except ModelError as exc:
        if str(path) in str(exc):
            raise
        raise ModelError(f"{path}: {exc}") from exc
    except CORRUPT_FILE_ERRORS as exc:
        raise ModelError(
            f"{path}: {type(exc).__name__}: {exc}; the model is incomplete or corrupt: "
            "retrain it with `intentbridge nlu train`"
        ) from exc


def read_json_object(path: Path) -> dict[str, Any]:
    """A model's JSON file, which must hold an object."""
    retrain = "the model is corrupt: retrain it with `intentbridge nlu train`"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror}); {retrain}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not UTF-8 text (a binary file?); {retrain}") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{path}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {retrain}"
        ) from exc
    except RecursionError as exc:
        raise ModelError(f"{path}: JSON nested too deeply; {retrain}") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: holds a JSON {type(doc).__name__}, not an object; {retrain}")
    return doc


def string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"'{key}' must be a list of strings")
    return list(value)


def optional_float(value: Any) -> float | None:
    """A saved number that may be ``null`` (or missing, from an older model)."""
    return None if value is None else float(value)


def check_archives(directory: Path) -> None:
    """Name a truncated or empty ``.npz`` before numpy fails on it without a name."""
    for archive in sorted(directory.glob("*.npz")):
        if not zipfile.is_zipfile(archive):
            raise ModelError(
                f"{archive}: not a complete .npz archive ({archive.stat().st_size} bytes; "
                "truncated or overwritten); retrain the model with `intentbridge nlu train`"
            )
