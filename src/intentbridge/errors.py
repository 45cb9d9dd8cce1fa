"""One root exception and a short tree under it.

Errors carry their context as attributes and say how to fix the problem.
"""

from __future__ import annotations

from pathlib import Path


class IntentbridgeError(Exception):
    """Root of every error intentbridge raises on purpose."""


class ConfigError(IntentbridgeError):
    """A bot project file is wrong: names the file, line and field and how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.hint = hint
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        text = where + (f"{self.field}: " if self.field else "") + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class TrainingDataError(ConfigError):
    """Training data is malformed (bad JSON, offsets outside the text, bad annotation)."""


class ModelError(IntentbridgeError):
    """A saved model is missing, incompatible or corrupt."""


class IntegrationError(IntentbridgeError):
    """Building or sending a backend call failed in a way the caller must handle."""


class UnsafeValueError(IntegrationError):
    """A user-supplied value cannot be placed safely into a path, query or header."""


class StoreError(IntentbridgeError):
    """A conversation or audit store could not be read or written."""


class MissingExtraError(IntentbridgeError):
    """An optional feature needs an extra that is not installed."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{extra}' extra: pip install 'intentbridge[{extra}]'"
        )
