"""``CallRecord``: what audit, logs and metrics learn about each backend call.

Records are built once per call by ``ObserverMiddleware`` and handed to hooks. They
are already redacted: values of parameters marked ``sensitive`` and of any key that
looks like a secret (token, password, pin, iban, card, ...) are ``"***"``, and the
path never includes the query string (where API keys may travel).

>>> records = RecordingHook()
>>> integrations = Integrations.from_config(config, hooks=[records])
>>> ...
>>> records[-1].outcome
'ok'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from intentbridge.integration.request import text_value
from intentbridge.observability.tracing import current_trace_id
from intentbridge.types import Call, Outcome, Result

__all__ = [
    "REDACTED",
    "CallRecord",
    "Hook",
    "RecordingHook",
    "looks_secret",
    "redact",
    "redact_path",
]

REDACTED = "***"

_SENSITIVE_WORDS = (
    "secret|token|password|passwd|pwd|passphrase|passcode|pin|pincode|otp|iban|card|"
    "cardnumber|pan|cvv|cvc|ssn|apikey|credential|credentials|authorization|cookie"
)
# Whole words of a snake_case / camelCase / kebab-case key, so "pin" is redacted but
# "shipping" is not.
_SECRET_KEY = re.compile(rf"(?:^|_)(?:{_SENSITIVE_WORDS})s?(?:_|$)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def looks_secret(key: str) -> bool:
    """Whether a key's name says its value is a secret or personal financial data."""
    normal = _CAMEL.sub("_", key).replace("-", "_").lower()
    return bool(_SECRET_KEY.search(normal)) or "api_key" in normal


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if looks_secret(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact(params: Mapping[str, Any], sensitive: Collection[str] = ()) -> dict[str, Any]:
    """A copy of ``params`` with sensitive and secret-looking values replaced by ``***``."""
    return {
        k: REDACTED if k in sensitive or looks_secret(k) else _redact_value(v)
        for k, v in params.items()
    }


def redact_path(call: Call, sensitive: Collection[str] = ()) -> str:
    """``call.path`` with each segment holding a sensitive parameter's value as ``***``."""
    hidden = [k for k in call.params if k in sensitive or looks_secret(k)]
    if not hidden:
        return call.path
    # A sensitive value that fills a path segment (/cards/{card}) is hidden there too;
    # whole segments only, so a short value cannot mangle the rest.
    encoded = {
        quote(text_value(call.params[name]), safe="")
        for name in hidden
        if call.params[name] is not None
    }
    encoded.discard("")
    return "/".join(REDACTED if seg in encoded else seg for seg in call.path.split("/"))


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One backend call as audit, logs and metrics see it (already redacted)."""

    timestamp: dt.datetime
    conversation_id: str | None
    user_id: str | None
    operation: str
    backend: str
    method: str
    path: str
    params: Mapping[str, Any]
    idempotency_key: str | None
    outcome: Outcome
    status_code: int | None
    latency_ms: float
    attempts: int
    error: str | None
    trace_id: str | None = None
    """The trace the call ran in (32 hex digits), None when tracing is off."""

    @classmethod
    def from_result(cls, call: Call, result: Result, sensitive: Collection[str] = ()) -> CallRecord:
        """Build the record of ``result``; ``sensitive`` names parameters to hide."""
        hidden = {k for k in call.params if k in sensitive or looks_secret(k)}
        return cls(
            timestamp=dt.datetime.now(dt.UTC),
            conversation_id=call.conversation_id,
            user_id=call.user_id,
            operation=call.operation,
            backend=call.backend,
            method=call.method,
            path=redact_path(call, hidden),
            params=redact(call.params, hidden),
            idempotency_key=call.idempotency_key,
            outcome=result.outcome,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            attempts=result.attempts,
            error=result.error,
            trace_id=current_trace_id(),
        )


Hook = Callable[[CallRecord], Awaitable[None] | None]
"""Receives every ``CallRecord``; may be sync or async. Exceptions are logged, not raised."""


@dataclass
class RecordingHook:
    """A hook that keeps every record in memory, for tests.

    >>> records = RecordingHook()
    >>> Integrations.from_config(config, hooks=[records])
    """

    records: list[CallRecord] = field(default_factory=list)

    def __call__(self, record: CallRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(self.records)

    def __getitem__(self, index: int) -> CallRecord:
        return self.records[index]

    def clear(self) -> None:
        self.records.clear()
