"""Settle money-moving calls whose outcome is unknown, and tell the user what happened.

A call whose answer was lost (timeout or reset after the request was sent) is
``outcome_unknown``: it may or may not have happened. Its idempotency key was stored
before it was sent, so it can be settled safely later — by the operation's ``resolve``
status operation, or by sending it again with the same key, which the backend treats
as the same request. The same runs at start-up for calls a crashed process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import jmespath
import structlog

from intentbridge.conversation.state import decode_value
from intentbridge.integration.templates import render
from intentbridge.project.schema import BotConfig
from intentbridge.stores.base import AuditEntry, PendingOperation, Store
from intentbridge.types import Result

log = structlog.get_logger("intentbridge.pending")

UNSETTLED = frozenset({"outcome_unknown", "timeout", "unavailable", "rate_limited", "error"})
"""Outcomes that leave a call's fate open: it is tried again in a later round."""

Execute = Callable[..., Awaitable[Result]]


class Notifier(Protocol):
    async def __call__(
        self,
        conversation_id: str,
        user_id: str,
        text: str,
        *,
        message_id: str,
        settles_key: str | None = None,
        done_reply: str | None = None,
    ) -> None: ...


class PendingResolver:
    """Finds unsettled money-moving calls and settles them, one round at a time."""

    def __init__(self, config: BotConfig, store: Store, execute: Execute, notify: Notifier) -> None:
        self.config = config
        self.store = store
        self.execute = execute
        self.notify = notify
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, *, include_fresh: bool = False) -> int:
        """One round over what is pending; returns how many calls were settled.

        ``include_fresh`` also takes calls still marked in flight, as at start-up, when
        no call of this process can be in flight yet.
        """
        settled = 0
        now = time.time()
        for pending in await self.store.pending():
            age = now - pending.created_at
            in_flight = pending.status == "pending" and age < self.config.pending.min_age
            if in_flight and not include_fresh:
                continue
            if await self._settle(pending, age):
                settled += 1
        return settled

    def start(self) -> None:
        """Run rounds in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="intentbridge-pending")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        first = True
        while True:
            try:
                await self.run_once(include_fresh=first)
            except Exception:
                # a round that fails (store down) is logged and tried again next time
                log.exception("pending_round_failed")
            first = False
            await asyncio.sleep(self.config.pending.interval)

    async def _settle(self, pending: PendingOperation, age: float) -> bool:
        op = self.config.operations.get(pending.operation)
        if op is None:
            await self.store.finish_pending(pending.idempotency_key, "failed", "error")
            log.error("pending_operation_unknown", operation=pending.operation)
            return True
        call_params: dict[str, Any] = decode_value(pending.params.get("call", {}))
        shown: dict[str, Any] = decode_value(pending.params.get("shown", call_params))
        user_id = str(pending.params.get("user_id") or pending.conversation_id.split(":", 1)[-1])
        key = pending.idempotency_key
        done_reply: str | None = None  # what a later "yes" is told: it was done
        result = await self._look_up(pending, call_params)
        if result is None:
            result = await self.execute(
                pending.operation,
                call_params,
                conversation_id=pending.conversation_id,
                user_id=user_id,
                idempotency_key=key,
            )
        if result.outcome in UNSETTLED:
            if age < self.config.pending.max_age:
                await self.store.finish_pending(key, "unknown", result.outcome)
                return False
            if not await self.store.finish_pending(key, "failed", "outcome_unknown"):
                return True  # another worker settled it and told the user
            text = (
                "I still can't confirm whether your earlier request went through. "
                "Please check your account or contact support, quoting reference "
                f"{key}."
            )
        else:
            if not await self.store.finish_pending(
                key, "done" if result.ok else "failed", result.outcome
            ):
                return True  # another worker settled it and told the user
            template = op.reply.get(result.outcome) or _default_text(self.config, result)
            reply = render(
                template,
                params=shown,
                data=result.data,
                reason=result.error,
                outcome=result.outcome,
            )
            text = "Update on your earlier request: " + reply
            if result.ok:
                done_reply = reply.strip()
        # the audit trail ends with what finally happened to this key
        await self.store.add_audit(
            AuditEntry(
                conversation_id=pending.conversation_id,
                user_id=user_id,
                operation=pending.operation,
                backend=op.backend,
                method=op.method,
                path="(settled)",
                outcome=result.outcome if result.outcome not in UNSETTLED else "outcome_unknown",
                idempotency_key=key,
                status_code=result.status_code,
                error=result.error,
                timestamp=time.time(),
            )
        )
        log.info("pending_settled", idempotency_key=key, outcome=result.outcome)
        await self.notify(
            pending.conversation_id,
            user_id,
            text,
            message_id=f"settled:{key}",
            settles_key=key,
            done_reply=done_reply,
        )
        return True

    async def _look_up(
        self, pending: PendingOperation, call_params: dict[str, Any]
    ) -> Result | None:
        """Ask the status operation whether the call happened; None: send it again."""
        op = self.config.operations[pending.operation]
        if op.resolve is None:
            return None
        status = await self.execute(
            op.resolve.operation,
            {**call_params, "idempotency_key": pending.idempotency_key},
            conversation_id=pending.conversation_id,
            user_id=pending.params.get("user_id"),
        )
        if not status.ok:
            # the lookup failing says nothing about the transfer: try again next round
            return dataclasses.replace(status, outcome="outcome_unknown")
        found = jmespath.search(op.resolve.found, status.data)
        if found:
            return Result(call=status.call, outcome="ok", status_code=200, data=found)
        return None


def _default_text(config: BotConfig, result: Result) -> str:
    if result.ok:
        return "Done."
    text = config.responses.model_dump().get(result.outcome)
    return text if isinstance(text, str) else config.responses.error
