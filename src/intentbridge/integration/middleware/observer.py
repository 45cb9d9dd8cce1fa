"""``ObserverMiddleware``: tell hooks about every call, after it ends.

Hooks receive a redacted ``CallRecord`` (see ``intentbridge.integration.records``);
logging, metrics, tracing and audit subscribe as hooks. A hook that fails is logged
and never breaks the call; a middleware below that raises becomes outcome ``error``.

>>> async def audit(record: CallRecord) -> None:
...     await store.append(record)
>>> compose([ObserverMiddleware([audit])], backend.send)
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping, Sequence

import structlog

from intentbridge.integration.records import CallRecord, Hook
from intentbridge.types import Call, Next, Result

__all__ = ["ObserverMiddleware"]

log = structlog.get_logger(__name__)


class ObserverMiddleware:
    """Emit a ``CallRecord`` to each hook after every call.

    ``sensitive`` maps an operation name to the parameter names to redact (those
    marked ``sensitive: true`` in ``bot.yaml``).
    """

    def __init__(
        self,
        hooks: Sequence[Hook],
        *,
        sensitive: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.hooks = tuple(hooks)
        self.sensitive = dict(sensitive or {})

    async def __call__(self, call: Call, call_next: Next) -> Result:
        try:
            result = await call_next(call)
        except Exception:
            # A bug in a middleware below must not take the conversation down.
            log.exception("middleware_failed", operation=call.operation, backend=call.backend)
            result = Result(call=call, outcome="error", error="internal error while calling")
        if self.hooks:
            await self.emit(call, result)
        return result

    async def emit(self, call: Call, result: Result) -> None:
        """Build the record of ``result`` and hand it to every hook."""
        record = CallRecord.from_result(call, result, self.sensitive.get(call.operation, ()))
        for hook in self.hooks:
            try:
                returned = hook(record)
                if inspect.isawaitable(returned):
                    await returned
            except Exception:
                log.exception("call_hook_failed", hook=repr(hook), operation=call.operation)
