"""``FaultStats``: what the fault proxy did, counted and logged for assertions."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Final, NamedTuple

from intentbridge.testing.faults.settings import FaultKind

__all__ = ["LOG_LIMIT", "FaultRecord", "FaultStats"]

# Enough for a benchmark of a few thousand calls, small enough to never matter.
LOG_LIMIT: Final = 10_000


class FaultRecord(NamedTuple):
    """One request as the proxy decided it; compares equal to a plain tuple.

    >>> assert proxy.stats.log[-1] == ("POST", "/customers/c1/transfers", "lose_response")
    """

    method: str
    path: str
    """The request path without the query string."""
    fault: FaultKind | None
    """The fault rolled for the request, or None when it passed through."""


def _new_log() -> deque[FaultRecord]:
    return deque(maxlen=LOG_LIMIT)


@dataclass
class FaultStats:
    """Counters per outcome, and the last ``LOG_LIMIT`` decisions in arrival order.

    ``forwarded`` counts requests sent to the backend (pass-throughs, lost responses
    and malformed answers alike); ``upstream_errors`` those the backend did not answer
    (the client got 502, or 504 on a timeout).

    >>> assert proxy.stats.forwarded == backend_hits
    >>> assert [r.fault for r in proxy.stats.log].count("error_5xx") == proxy.stats.error_5xx
    """

    requests: int = 0
    forwarded: int = 0
    error_5xx: int = 0
    rate_limited: int = 0
    lost_responses: int = 0
    resets: int = 0
    malformed: int = 0
    delayed: int = 0
    upstream_errors: int = 0
    log: deque[FaultRecord] = field(default_factory=_new_log)

    def counts(self) -> dict[str, int]:
        """The counters as a dict (without the log), e.g. for a benchmark report."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "log"}

    def faults(self) -> list[FaultKind | None]:
        """The fault of each logged request, in order: the sequence a seed reproduces."""
        return [record.fault for record in list(self.log)]

    def clear(self) -> None:
        """Zero the counters and empty the log."""
        for f in fields(self):
            if f.name != "log":
                setattr(self, f.name, 0)
        self.log.clear()
