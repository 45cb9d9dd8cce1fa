"""Circuit-breaker state: closed, open, half-open — in memory or shared in Redis.

``BreakerMiddleware`` asks a store two things: may this call go out (``admit``), and
how did it end (``record``). The store answers atomically, so concurrent calls (and,
with Redis, several worker processes) never both think they opened or closed the
circuit. Times are wall-clock seconds (``time.time``) because workers on different
processes must agree on them; pass ``clock`` to drive the state in tests.

>>> store = MemoryBreakerStore()
>>> admission, transition = await store.admit("bank", settings)
>>> await store.record("bank", settings, failed=True, probe=admission == "probe")

Implement ``BreakerStore`` to keep the state elsewhere; ``RedisBreakerStore`` is the
shared one (a hash ``{prefix}:breaker:{backend}`` updated by Lua scripts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from intentbridge.integration.redis import redis_errors
from intentbridge.project.schema import BreakerSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Admission",
    "BreakerDecision",
    "BreakerState",
    "BreakerStore",
    "MemoryBreakerStore",
    "RedisBreakerStore",
    "Transition",
]

log = structlog.get_logger(__name__)

BreakerState = Literal["closed", "open", "half_open"]
Admission = Literal["allow", "probe", "reject"]
"""``allow``: closed, go; ``probe``: a half-open trial call, go; ``reject``: do not call."""
Transition = Literal["opened", "half_open", "closed"]


@dataclass(frozen=True, slots=True)
class BreakerDecision:
    """Emitted to decision hooks when a breaker changes state or turns a call away.

    ``decision`` is ``opened``, ``half_open``, ``closed`` or ``rejected``; ``operation``
    is the call that caused it.
    """

    backend: str
    decision: Literal["opened", "half_open", "closed", "rejected"]
    operation: str
    shared: bool = False
    """True when the state lives in Redis (shared by all workers)."""


class BreakerStore(Protocol):
    """Where breaker state lives. Both methods must be atomic per backend."""

    async def admit(
        self, backend: str, settings: BreakerSettings
    ) -> tuple[Admission, Transition | None]:
        """Whether a call may go out now, and the transition this caused (if any)."""
        ...

    async def record(
        self, backend: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> Transition | None:
        """Count how an admitted call ended; returns the transition it caused."""
        ...

    async def state(self, backend: str) -> BreakerState:
        """The current state (for readiness pages and tests)."""
        ...

    async def reset(self, backend: str) -> None:
        """Close the circuit and forget its counts."""
        ...


@dataclass(slots=True)
class _Circuit:
    state: BreakerState = "closed"
    opened_at: float = 0.0
    """When it opened, or (half-open) when the trials began."""
    probes: int = 0
    consecutive: int = 0
    calls: int = 0
    failures: int = 0
    window_start: float = 0.0


class MemoryBreakerStore:
    """Breaker state in this process: a dict of small records, no locks needed.

    Every method runs without awaiting, so on one event loop each is atomic.
    """

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}

    def __repr__(self) -> str:
        return f"MemoryBreakerStore(backends={sorted(self._circuits)})"

    def _circuit(self, backend: str) -> _Circuit:
        circuit = self._circuits.get(backend)
        if circuit is None:
            circuit = self._circuits[backend] = _Circuit()
        return circuit

    async def admit(
        self, backend: str, settings: BreakerSettings
    ) -> tuple[Admission, Transition | None]:
        circuit = self._circuits.get(backend)
        if circuit is None or circuit.state == "closed":
            return "allow", None  # the hot path: one dict lookup
        now = self.clock()
        waited = now - circuit.opened_at >= settings.reset_timeout
        if circuit.state == "open":
            if not waited:
                return "reject", None
            circuit.state, circuit.opened_at, circuit.probes = "half_open", now, 1
            return "probe", "half_open"
        # Half-open: a few trials at once. Trials that never reported (a worker died,
        # a task was cancelled) stop counting after another reset_timeout.
        if waited:
            circuit.opened_at, circuit.probes = now, 0
        if circuit.probes < settings.half_open_max_calls:
            circuit.probes += 1
            return "probe", None
        return "reject", None

    async def record(
        self, backend: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> Transition | None:
        circuit = self._circuits.get(backend)
        if circuit is None:
            if not failed and settings.failure_ratio is None:
                return None  # a success while closed and clean changes nothing
            circuit = self._circuit(backend)
        now = self.clock()
        if circuit.state == "half_open":
            if not probe:
                return None  # a call admitted before the circuit opened: too old to judge
            if failed:
                circuit.state, circuit.opened_at, circuit.probes = "open", now, 0
                return "opened"
            self._circuits[backend] = _Circuit()
            return "closed"
        if circuit.state == "open":
            return None
        if settings.failure_ratio is not None and now - circuit.window_start >= settings.window:
            circuit.window_start, circuit.calls, circuit.failures = now, 0, 0
        circuit.calls += 1
        if not failed:
            circuit.consecutive = 0
            return None
        circuit.consecutive += 1
        circuit.failures += 1
        if _should_open(circuit.consecutive, circuit.calls, circuit.failures, settings):
            self._circuits[backend] = _Circuit(state="open", opened_at=now)
            return "opened"
        return None

    async def state(self, backend: str) -> BreakerState:
        circuit = self._circuits.get(backend)
        return "closed" if circuit is None else circuit.state

    async def reset(self, backend: str) -> None:
        self._circuits.pop(backend, None)


def _should_open(consecutive: int, calls: int, failures: int, settings: BreakerSettings) -> bool:
    if consecutive >= settings.failure_threshold:
        return True
    ratio = settings.failure_ratio
    return ratio is not None and calls >= settings.min_calls and failures / calls >= ratio


# The same state machine as MemoryBreakerStore, in one atomic step on the server.
# Codes keep replies small: admit -> 0 allow, 1 probe, 2 probe and now half-open,
# 3 reject, 4 allow with failures counted; record -> 0 nothing, 1 opened, 2 closed.
_ADMIT = """
local key = KEYS[1]
local now, reset_timeout = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_probes, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', key, 'state', 'opened_at', 'probes', 'consecutive')
local state = s[1]
if not state or state == 'closed' then
  if (tonumber(s[4]) or 0) > 0 then return 4 end
  return 0
end
local opened_at, probes = tonumber(s[2]) or 0, tonumber(s[3]) or 0
local waited = now - opened_at >= reset_timeout
if state == 'open' then
  if not waited then return 3 end
  redis.call('HSET', key, 'state', 'half_open', 'opened_at', ARGV[1], 'probes', 1)
  redis.call('EXPIRE', key, ttl)
  return 2
end
if waited then
  probes = 0
  redis.call('HSET', key, 'opened_at', ARGV[1])
end
if probes < max_probes then
  redis.call('HSET', key, 'probes', probes + 1)
  redis.call('EXPIRE', key, ttl)
  return 1
end
return 3
"""

_RECORD = """
local key = KEYS[1]
local now, failed, probe = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3] == '1'
local threshold, ratio = tonumber(ARGV[4]), tonumber(ARGV[5])
local window, min_calls, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local s = redis.call('HMGET', key, 'state', 'consecutive', 'calls', 'failures', 'window_start')
local state = s[1] or 'closed'
if state == 'half_open' then
  if not probe then return 0 end
  if failed then
    redis.call('HSET', key, 'state', 'open', 'opened_at', ARGV[1], 'probes', 0)
    redis.call('EXPIRE', key, ttl)
    return 1
  end
  redis.call('DEL', key)
  return 2
end
if state == 'open' then return 0 end
if not failed and not s[1] and ratio < 0 then return 0 end
local consecutive, calls = tonumber(s[2]) or 0, tonumber(s[3]) or 0
local failures, window_start = tonumber(s[4]) or 0, tonumber(s[5]) or 0
if ratio >= 0 and now - window_start >= window then
  window_start, calls, failures = now, 0, 0
end
calls = calls + 1
if failed then
  consecutive = consecutive + 1
  failures = failures + 1
else
  consecutive = 0
end
if failed and (consecutive >= threshold
    or (ratio >= 0 and calls >= min_calls and failures / calls >= ratio)) then
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'open', 'opened_at', ARGV[1], 'probes', 0)
  redis.call('EXPIRE', key, ttl)
  return 1
end
redis.call('HSET', key, 'state', 'closed', 'consecutive', consecutive, 'calls', calls,
  'failures', failures, 'window_start', window_start)
redis.call('EXPIRE', key, ttl)
return 0
"""

_ADMISSIONS: dict[int, tuple[Admission, Transition | None]] = {
    0: ("allow", None),
    1: ("probe", None),
    2: ("probe", "half_open"),
    3: ("reject", None),
    4: ("allow", None),
}
_TRANSITIONS: dict[int, Transition | None] = {0: None, 1: "opened", 2: "closed"}


class RedisBreakerStore:
    """Breaker state shared by every worker through Redis, with a local fallback.

    Each backend's state is one hash, ``{prefix}:breaker:{backend}``, read and written
    only by Lua scripts (so each decision is atomic across processes) and expiring
    when unused. When Redis does not answer, the store logs once and keeps going on
    ``fallback`` (local state) for ``retry_after`` seconds before trying Redis again:
    a Redis outage never fails a turn, it only stops workers sharing what they saw.

    >>> store = RedisBreakerStore(connections.get("redis://127.0.0.1:6379/0"))
    """

    shared = True

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "intentbridge",
        clock: Callable[[], float] = time.time,
        fallback: BreakerStore | None = None,
        retry_after: float = 5.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self.fallback: BreakerStore = fallback or MemoryBreakerStore(clock)
        self.retry_after = retry_after
        self._admit = redis.register_script(_ADMIT)
        self._record = redis.register_script(_RECORD)
        self._down_until = 0.0
        self._errors = redis_errors()
        # Backends whose last admit saw no failures counted: a success there has
        # nothing to reset, so it costs no second round trip.
        self._clean: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisBreakerStore(prefix={self.prefix!r})"

    def key(self, backend: str) -> str:
        """The Redis key of ``backend``'s state."""
        return f"{self.prefix}:breaker:{backend}"

    def _use_redis(self) -> bool:
        return self._down_until == 0.0 or time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException, backend: str) -> None:
        if self._down_until == 0.0:
            # Log the outage once, not once a call; recovery is logged too.
            log.warning(
                "breaker_state_unavailable",
                backend=backend,
                error=type(exc).__name__,
                fallback="local state",
            )
        self._down_until = time.monotonic() + self.retry_after
        self._clean.clear()

    def _recovered(self) -> None:
        if self._down_until != 0.0:
            log.info("breaker_state_recovered")
            self._down_until = 0.0

    def _ttl(self, settings: BreakerSettings) -> int:
        return math.ceil(2 * max(settings.reset_timeout, settings.window) + 60)

    async def admit(
        self, backend: str, settings: BreakerSettings
    ) -> tuple[Admission, Transition | None]:
        if self._use_redis():
            args: list[str | float] = [
                self.clock(),
                settings.reset_timeout,
                settings.half_open_max_calls,
                self._ttl(settings),
            ]
            try:
                code = int(await self._admit(keys=[self.key(backend)], args=args))
            except self._errors as exc:
                self._failed(exc, backend)
            else:
                self._recovered()
                if code == 0:
                    self._clean.add(backend)
                else:
                    self._clean.discard(backend)
                return _ADMISSIONS[code]
        return await self.fallback.admit(backend, settings)

    async def record(
        self, backend: str, settings: BreakerSettings, *, failed: bool, probe: bool
    ) -> Transition | None:
        if not failed and not probe and backend in self._clean and settings.failure_ratio is None:
            return None
        self._clean.discard(backend)
        if self._use_redis():
            ratio = settings.failure_ratio
            args: list[str | float] = [
                self.clock(),
                int(failed),
                int(probe),
                settings.failure_threshold,
                -1 if ratio is None else ratio,
                settings.window,
                settings.min_calls,
                self._ttl(settings),
            ]
            try:
                code = await self._record(keys=[self.key(backend)], args=args)
            except self._errors as exc:
                self._failed(exc, backend)
            else:
                self._recovered()
                return _TRANSITIONS[int(code)]
        return await self.fallback.record(backend, settings, failed=failed, probe=probe)

    async def state(self, backend: str) -> BreakerState:
        if self._use_redis():
            try:
                raw = await self.redis.hget(self.key(backend), "state")
            except self._errors as exc:
                self._failed(exc, backend)
            else:
                value = raw.decode() if isinstance(raw, bytes) else raw
                if value in ("open", "half_open"):
                    return "open" if value == "open" else "half_open"
                return "closed"
        return await self.fallback.state(backend)

    async def reset(self, backend: str) -> None:
        await self.fallback.reset(backend)
        try:
            await self.redis.delete(self.key(backend))
        except self._errors as exc:
            self._failed(exc, backend)
