"""Fault injection between a bot and its backend, for tests and benchmarks.

``FaultProxy`` is a small HTTP/1.1 proxy on 127.0.0.1; ``Faults`` says what goes
wrong on the way (latency, 503, 429, lost answers, connection resets, garbled bodies),
with a seed for reproducible runs; ``proxy.stats`` counts what happened::

    async with FaultProxy(backend_url, Faults(lose_response=0.2, seed=3)) as proxy:
        bot = make_bot(base_url=proxy.url)
        ...
    assert proxy.stats.lost_responses > 0
"""

from intentbridge.testing.faults.proxy import FaultProxy
from intentbridge.testing.faults.settings import FAULT_KINDS, FaultKind, Faults
from intentbridge.testing.faults.stats import LOG_LIMIT, FaultRecord, FaultStats

__all__ = [
    "FAULT_KINDS",
    "LOG_LIMIT",
    "FaultKind",
    "FaultProxy",
    "FaultRecord",
    "FaultStats",
    "Faults",
]
