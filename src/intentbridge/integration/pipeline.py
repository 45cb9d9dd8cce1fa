"""Build each operation's middleware chain from ``bot.yaml``.

A backend's ``middleware:`` lists the steps around each of its calls, outermost
first; an operation's own ``middleware:`` replaces that list for the operation.
Without one, the chain is ``DEFAULT_MIDDLEWARE``: ``rate_limit``, ``breaker``,
``bulkhead``, ``retry``. An entry is

- a built-in: ``rate_limit`` (backend quota and per-user limits; left out when none
  is configured or ``INTENTBRIDGE_RATE_LIMITS=off``), ``breaker``, ``bulkhead``,
  ``retry`` (``{retry: {attempts: 1}}`` overrides the backend's retry settings),
  ``timeout`` (``{timeout: {seconds: 8}}``, not in the default chain);
- your own, as a dotted path to a factory that takes the entry's settings and
  returns a middleware (``async (call, call_next) -> Result``)::

      # bot.yaml
      backends:
        bank:
          base_url: https://bank.example.com
          middleware: [rate_limit, breaker, {"acme.middleware:tagged": {team: payments}},
                       bulkhead, retry]

      # acme/middleware.py
      def tagged(settings: dict[str, Any]) -> Middleware:
          header = ("X-Team", settings["team"])

          async def step(call: Call, call_next: Next) -> Result:
              return await call_next(dataclasses.replace(call,
                                                         headers=(*call.headers, header)))

          return step

Stateful built-ins are one per backend: an operation that overrides the list still
shares its backend's breaker, bulkhead and counters.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from intentbridge.errors import ConfigError
from intentbridge.integration.breaker_state import (
    BreakerStore,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from intentbridge.integration.decisions import DecisionHook, emit_decision
from intentbridge.integration.middleware.breaker import BreakerMiddleware
from intentbridge.integration.middleware.bulkhead import BulkheadMiddleware
from intentbridge.integration.middleware.rate_limit import RateLimitMiddleware
from intentbridge.integration.middleware.retry import RetryMiddleware
from intentbridge.integration.middleware.timeout import TimeoutMiddleware
from intentbridge.integration.rate_limits import RateLimits, rate_limits_enabled
from intentbridge.integration.redis import RedisConnections, is_redis_url
from intentbridge.project.schema import (
    DEFAULT_MIDDLEWARE,
    BotConfig,
    RetrySettings,
    middleware_step,
)
from intentbridge.types import Call, Middleware

__all__ = ["Pipeline", "load_factory"]


def load_factory(path: str) -> Callable[[dict[str, Any]], Middleware]:
    """The callable a ``package.module:factory`` path names (``ImportError`` if none)."""
    module_name, _, attr = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    factory: Callable[[dict[str, Any]], Middleware] = target
    return factory


class Pipeline:
    """The middleware of every operation, and the state they share.

    ``breaker_store`` and ``rate_limits`` live where ``limits.storage_url`` says (this
    process, or Redis via ``connections``). ``clock`` drives the breaker (tests).

    >>> pipeline = Pipeline(config, connections=RedisConnections())
    >>> compose([observer, *pipeline.middleware_for("transfer_money")], client.send)
    """

    def __init__(
        self,
        config: BotConfig,
        *,
        connections: RedisConnections,
        is_idempotent: Callable[[Call], bool] | None = None,
        decision_hooks: Sequence[DecisionHook] = (),
        clock: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.is_idempotent = is_idempotent
        self.decision_hooks = tuple(decision_hooks)
        self.rate_limits_on = rate_limits_enabled(env)
        limits = config.limits
        self.breaker_store: BreakerStore
        if is_redis_url(limits.storage_url):
            self.breaker_store = RedisBreakerStore(
                connections.get(limits.storage_url), prefix=limits.key_prefix, clock=clock
            )
        else:
            self.breaker_store = MemoryBreakerStore(clock)
        self.rate_limits = RateLimits.from_settings(limits, connections)
        self._retry_hooks: tuple[DecisionHook, ...] = ()
        if self.decision_hooks:
            # RetryMiddleware lets a failing hook raise; ours are logged and skipped.
            self._retry_hooks = (self._emit,)
        self._shared: dict[tuple[str, str], Middleware | None] = {}
        self._backend_chains: dict[str, list[Middleware]] = {}

    async def _emit(self, decision: object) -> None:
        await emit_decision(self.decision_hooks, decision)

    def middleware_for(self, operation: str) -> list[Middleware]:
        """The configured steps around ``operation``'s calls, outermost first."""
        op = self.config.operations[operation]
        if op.middleware is None:
            chain = self._backend_chains.get(op.backend)
            if chain is None:
                backend = self.config.backends[op.backend]
                entries = DEFAULT_MIDDLEWARE if backend.middleware is None else backend.middleware
                chain = self._build(op.backend, entries, f"backends.{op.backend}.middleware")
                self._backend_chains[op.backend] = chain
            return list(chain)
        return self._build(op.backend, op.middleware, f"operations.{operation}.middleware")

    def _build(
        self, backend: str, entries: Sequence[str | dict[str, Any]], where: str
    ) -> list[Middleware]:
        chain: list[Middleware] = []
        for index, entry in enumerate(entries):
            name, settings = middleware_step(entry)
            step = self._step(backend, name, settings, f"{where}.{index}")
            if step is not None:
                chain.append(step)
        return chain

    def _step(
        self, backend: str, name: str, settings: dict[str, Any], field: str
    ) -> Middleware | None:
        if name == "timeout":
            return TimeoutMiddleware(float(settings["seconds"]))
        if name == "retry" and settings:
            return self._retry(RetrySettings.model_validate(settings))
        if name in ("rate_limit", "breaker", "bulkhead", "retry"):
            key = (backend, name)
            if key not in self._shared:
                self._shared[key] = self._stateful(backend, name)
            return self._shared[key]
        return self._custom(name, settings, field)

    def _stateful(self, backend: str, name: str) -> Middleware | None:
        settings = self.config.backends[backend]
        if name == "breaker":
            return BreakerMiddleware(
                backend, settings.breaker, self.breaker_store, hooks=self.decision_hooks
            )
        if name == "bulkhead":
            return BulkheadMiddleware(
                backend,
                settings.max_concurrency,
                settings.concurrency_wait,
                hooks=self.decision_hooks,
            )
        if name == "retry":
            return self._retry(settings.retry)
        user_limits = {
            op_name: op.user_rate_limit
            for op_name, op in self.config.operations.items()
            if op.backend == backend and op.user_rate_limit
        }
        if not self.rate_limits_on or not (settings.rate_limit or user_limits):
            return None  # nothing to count: no step at all, so no cost per call
        return RateLimitMiddleware(
            backend,
            self.rate_limits,
            quota=settings.rate_limit,
            max_wait=settings.rate_limit_wait,
            user_limits=user_limits,
            hooks=self.decision_hooks,
        )

    def _retry(self, settings: RetrySettings) -> Middleware:
        return RetryMiddleware(settings, is_idempotent=self.is_idempotent, hooks=self._retry_hooks)

    def _custom(self, path: str, settings: dict[str, Any], field: str) -> Middleware:
        try:
            factory = load_factory(path)
        except (ImportError, AttributeError, TypeError) as exc:
            raise ConfigError(
                f"cannot load middleware {path!r}: {exc}",
                field=field,
                hint="the module must be importable (installed, or in the project folder "
                "on PYTHONPATH) and define that factory",
            ) from None
        try:
            middleware = factory(settings)
        except Exception as exc:
            raise ConfigError(
                f"middleware factory {path!r} failed: {type(exc).__name__}: {exc}",
                field=field,
                hint="the factory is called with the entry's settings mapping",
            ) from exc
        if not callable(middleware):
            raise ConfigError(
                f"middleware factory {path!r} returned {type(middleware).__name__}, "
                "not a middleware",
                field=field,
                hint="return an async callable (call, call_next) -> Result",
            )
        return middleware
