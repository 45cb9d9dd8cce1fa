"""``Integrations``: run a project's operations against its backends.

The dialogue layer calls exactly this::

    integrations = Integrations.from_config(config, hooks=[audit.record])
    result = await integrations.execute(
        "transfer_money", {"amount": Money(Decimal("50"), "EUR"), ...},
        conversation_id=conv.id, user_id=identity.user_id, idempotency_key=frame.key,
    )
    if result.ok:
        text = render(op.reply["ok"], data=result.data, params=...)
    await integrations.aclose()

Each call runs: build (safely) → observer → your middleware → the backend's chain
from ``bot.yaml`` (by default rate_limit → breaker → bulkhead → retry) → backend (auth,
send, classify) → response mapping. ``execute`` never raises for a failure: an
unsafe value becomes ``denied``, a bug in a middleware ``error``, a backend problem
its outcome. The one thing it does raise for is a programming error: an unknown
operation, or a money-moving operation called without an idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from intentbridge.errors import ConfigError, IntegrationError, UnsafeValueError
from intentbridge.integration.backend import BackendClient, error_reason, short_reason
from intentbridge.integration.decisions import DecisionHook
from intentbridge.integration.mapping import ResponseMapping, compile_expression
from intentbridge.integration.middleware.attempts import AttemptObserverMiddleware
from intentbridge.integration.middleware.chain import compose
from intentbridge.integration.middleware.observer import ObserverMiddleware
from intentbridge.integration.pipeline import Pipeline
from intentbridge.integration.records import Hook
from intentbridge.integration.redis import RedisConnections
from intentbridge.integration.request import build_call
from intentbridge.integration.templates import check_templates
from intentbridge.integration.transport import transport_choice
from intentbridge.project.schema import BotConfig, Operation
from intentbridge.types import Call, Middleware, Next, Outcome, Result

__all__ = ["Integrations"]

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    op: Operation
    mapping: ResponseMapping
    reason: ParsedResult | None


class Integrations:
    """All backends and operations of one bot project, ready to execute.

    Build with ``from_config``; use as ``async with`` or call ``aclose()`` at shutdown.
    """

    def __init__(
        self,
        config: BotConfig,
        *,
        middleware: Sequence[Middleware] = (),
        hooks: Sequence[Hook] = (),
        decision_hooks: Sequence[DecisionHook] = (),
    ) -> None:
        self.config = config
        transport_choice()  # a wrong $INTENTBRIDGE_HTTP_TRANSPORT fails here, not mid-turn
        self.clients = {name: BackendClient(name, b) for name, b in config.backends.items()}
        self._ops: dict[str, _Compiled] = {}
        for name, op in config.operations.items():
            if op.backend not in self.clients:
                raise IntegrationError(f"operation {name!r} uses unknown backend {op.backend!r}")
            reason = None
            if op.error_reason:
                try:
                    reason = compile_expression(op.error_reason)
                except JMESPathError as exc:
                    raise ConfigError(
                        f"invalid JMESPath {op.error_reason!r}: {exc}",
                        field=f"operations.{name}.error_reason",
                    ) from None
            self._ops[name] = _Compiled(
                op=op,
                mapping=ResponseMapping(op.response, where=f"operations.{name}.response"),
                reason=reason,
            )
        sensitive = {
            name: frozenset(p for p, spec in op.parameters.items() if spec.sensitive)
            for name, op in config.operations.items()
        }
        self.observer = ObserverMiddleware(hooks, sensitive=sensitive)
        attempts = AttemptObserverMiddleware(sensitive=sensitive)
        # One Redis client per URL for breaker state and rate-limit counters.
        self.redis = RedisConnections()
        self.pipeline = Pipeline(
            config,
            connections=self.redis,
            is_idempotent=self._is_idempotent,
            decision_hooks=decision_hooks,
        )
        self.rate_limits = self.pipeline.rate_limits
        self._chains: dict[str, Next] = {}
        for name, op in config.operations.items():
            # attempts sits inside retry: one span, traceparent and log event per attempt
            steps = self.pipeline.middleware_for(name)
            self._chains[name] = compose(
                [self.observer, *middleware, *steps, attempts], self.clients[op.backend].send
            )

    @classmethod
    def from_config(
        cls,
        config: BotConfig,
        middleware: Sequence[Middleware] = (),
        hooks: Sequence[Hook] = (),
        decision_hooks: Sequence[DecisionHook] = (),
    ) -> Integrations:
        """Compile mappings and templates (``ConfigError`` if any is invalid) and build.

        ``middleware`` runs, in order, after the observer and before the chain
        configured in ``bot.yaml`` (see ``intentbridge.integration.pipeline``), so it
        runs once per call, not once per attempt; ``hooks`` receive a ``CallRecord``
        after every call; ``decision_hooks`` receive every retry, breaker, bulkhead
        and rate-limit decision (see ``intentbridge.integration.decisions``).
        """
        check_templates(config)
        return cls(config, middleware=middleware, hooks=hooks, decision_hooks=decision_hooks)

    def __repr__(self) -> str:
        return f"Integrations(backends={sorted(self.clients)}, operations={len(self._ops)})"

    async def __aenter__(self) -> Integrations:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def operation(self, name: str) -> Operation:
        """The operation called ``name``; ``IntegrationError`` when there is none."""
        try:
            return self._ops[name].op
        except KeyError:
            raise IntegrationError(
                f"unknown operation {name!r}; known: {', '.join(sorted(self._ops)) or 'none'}"
            ) from None

    def _is_idempotent(self, call: Call) -> bool:
        if call.idempotency_key is not None:
            return True
        compiled = self._ops.get(call.operation)
        if compiled is None:
            return call.method in ("GET", "PUT", "DELETE")
        return compiled.op.is_idempotent

    async def execute(
        self,
        op_name: str,
        params: Mapping[str, Any],
        *,
        conversation_id: str | None,
        user_id: str | None,
        idempotency_key: str | None = None,
    ) -> Result:
        """Run operation ``op_name`` with ``params``; the ``Result`` says what happened.

        On ``ok``, ``result.data`` holds the mapped response; on ``rejected``,
        ``result.error`` holds the backend's reason (``error_reason`` or
        ``detail``/``error``/``message``).
        """
        self.operation(op_name)
        compiled = self._ops[op_name]
        op = compiled.op
        if op.moves_money and not idempotency_key:
            raise IntegrationError(
                f"operation {op_name!r} moves money and must be executed with an "
                "idempotency_key (one per confirmed request, reused on every retry)"
            )
        try:
            call = build_call(
                op_name,
                op,
                op.backend,
                params,
                conversation_id=conversation_id,
                user_id=user_id,
                idempotency_key=idempotency_key,
            )
        except IntegrationError as exc:
            call = Call(
                backend=op.backend,
                operation=op_name,
                method=op.method,
                path=op.path,
                idempotency_key=idempotency_key,
                conversation_id=conversation_id,
                user_id=user_id,
                params=params,
                moves_money=op.moves_money,
            )
            outcome: Outcome = "denied" if isinstance(exc, UnsafeValueError) else "error"
            log.warning("call_not_built", operation=op_name, outcome=outcome, error=str(exc))
            result = Result(call=call, outcome=outcome, error=str(exc), attempts=0)
            await self.observer.emit(call, result)
            return result

        try:
            result = await self._chains[op_name](call)
        except Exception:
            # The observer already turns middleware bugs into "error"; this catches
            # a bug in the observer or a hook-free chain all the same.
            log.exception("call_failed", operation=op_name, backend=op.backend)
            return Result(call=call, outcome="error", error="internal error while calling")

        if result.outcome == "ok":
            return dataclasses.replace(result, data=compiled.mapping(result.body))
        if result.outcome == "rejected" and compiled.reason is not None:
            reason = _search_reason(compiled.reason, result.body, self.clients[op.backend].redact)
            if reason:
                return dataclasses.replace(result, error=reason)
        return result

    async def aclose(self) -> None:
        """Close every backend's connections, and Redis's."""
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))
        await self.redis.aclose()

    async def check_ready(self, timeout: float = 2.0) -> dict[str, bool]:  # noqa: ASYNC109
        """Whether each backend answers HTTP on its base URL (any status counts)."""
        names = list(self.clients)
        answers = await asyncio.gather(*(self.clients[n].ping(timeout) for n in names))
        return dict(zip(names, answers, strict=True))


def _search_reason(expression: ParsedResult, body: Any, clean: Callable[[str], str]) -> str | None:
    try:
        value = expression.search(body)
    except JMESPathError:
        return None
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return short_reason(clean(value))
    return error_reason({"detail": value}, clean) or short_reason(clean(str(value)))
