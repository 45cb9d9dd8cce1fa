"""``Faults``: what the fault proxy does to a request, and the seeded roll that decides it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["FAULT_KINDS", "FaultKind", "Faults"]

FaultKind = Literal["reset", "error_5xx", "rate_limit", "lose_response", "malformed"]

# The order faults are rolled in; part of the reproducibility contract (same seed, same
# order, same sequence), so only ever append to it.
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "reset",
    "error_5xx",
    "rate_limit",
    "lose_response",
    "malformed",
)


@dataclass(frozen=True)
class Faults:
    """What a :class:`FaultProxy` does to the requests it sees; ``Faults()`` does nothing.

    The probabilities are per request and mutually exclusive (at most one fault fires,
    so they must sum to at most 1); ``latency`` is added on top of any of them.

    - ``latency``: a delay drawn uniformly from ``(low, high)`` seconds, before anything
      else happens.
    - ``error_5xx``: answer ``error_status`` (503) at once; the backend never sees it.
    - ``rate_limit``: answer 429 with ``Retry-After: retry_after`` at once. RFC 9110
      allows whole seconds only; a fraction is sent as given (handy for fast tests,
      but clients that follow the RFC ignore it).
    - ``lose_response``: forward, read the backend's whole answer, then close the
      client connection without a byte: the backend acted, the client cannot know.
    - ``reset``: abort the client connection (TCP RST) before forwarding: nothing happened.
    - ``malformed``: forward, then answer the backend's status and headers with its body
      cut in half and garbage appended (never valid JSON). Answers that cannot carry a
      body (HEAD, 204, 304) pass through unchanged.

    Faults apply only to requests that pass every filter given: ``methods`` (e.g.
    ``{"POST"}``), ``path_prefix`` (e.g. ``"/customers/"``) and ``match(method, path)``;
    the others (an OAuth token request, say) pass through untouched and draw no random
    numbers, so they do not shift the fault sequence.

    Each request that passes the filters draws exactly two numbers from one
    ``random.Random(seed)`` (which fault, then how much latency), so the same ``seed``
    and the same order of requests give the same faults.

    >>> Faults(error_5xx=0.2, latency=(0.01, 0.05), methods={"POST"}, seed=7)
    >>> Faults(lose_response=1.0, match=lambda method, path: path.endswith("/transfers"))
    """

    latency: tuple[float, float] = (0.0, 0.0)
    error_5xx: float = 0.0
    error_status: int = 503
    rate_limit: float = 0.0
    retry_after: float = 1.0
    lose_response: float = 0.0
    reset: float = 0.0
    malformed: float = 0.0
    seed: int | None = None
    methods: Collection[str] | None = None
    path_prefix: str | None = None
    match: Callable[[str, str], bool] | None = None

    def __post_init__(self) -> None:
        total = 0.0
        for kind in FAULT_KINDS:
            p = getattr(self, kind)
            if not (isinstance(p, int | float) and 0.0 <= p <= 1.0):
                raise ValueError(f"Faults.{kind} is a probability between 0 and 1, got {p!r}")
            total += p
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the fault probabilities add up to {total:g}; at most one fault fires per "
                "request, so they must add up to at most 1"
            )
        low, high = self.latency
        if not (0.0 <= low <= high and math.isfinite(high)):
            raise ValueError(
                f"Faults.latency is (low, high) with 0 <= low <= high, got {low, high}"
            )
        if not 500 <= self.error_status <= 599:
            raise ValueError(f"Faults.error_status must be a 5xx status, got {self.error_status}")
        if not (self.retry_after >= 0 and math.isfinite(self.retry_after)):
            raise ValueError(f"Faults.retry_after is seconds >= 0, got {self.retry_after!r}")
        # Plain floats from here on (an int 1 or a bool would do, but print oddly).
        for name in (*FAULT_KINDS, "retry_after"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "latency", (float(low), float(high)))
        if self.methods is not None:
            # A bare "POST" is a Collection[str] of letters; take it as the one method meant.
            methods = [self.methods] if isinstance(self.methods, str) else self.methods
            object.__setattr__(self, "methods", frozenset(m.upper() for m in methods))

    def applies_to(self, method: str, path: str) -> bool:
        """Whether faults may fire for ``method`` and ``path`` (path without the query)."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return self.match is None or self.match(method, path)

    def roll(self, rng: random.Random, method: str, path: str) -> tuple[float, FaultKind | None]:
        """Decide one request: ``(delay in seconds, fault or None)``."""
        if not self.applies_to(method, path):
            return 0.0, None
        # Always two draws, whatever the settings, so changing one probability does not
        # shift every later decision of the same seed.
        pick = rng.random()
        spread = rng.random()
        low, high = self.latency
        delay = low + (high - low) * spread
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += getattr(self, kind)
            if pick < threshold:
                return delay, kind
        return delay, None

    def new_random(self) -> random.Random:
        """A fresh random stream for these settings (seeded when ``seed`` is set)."""
        # Not for security: reproducible fault sequences are the point.
        return random.Random(self.seed)  # noqa: S311
