"""What you need to test a bot and its integrations, also used by our own tests.

- ``LoopbackServer``: run an ASGI app (your fake backend) as a real HTTP server;
- ``fast_retries`` / ``set_testing``: retries record their waits instead of sleeping;
- ``RecordingHook``: collect the ``CallRecord`` of every backend call;
- ``FaultProxy`` / ``Faults``: put latency, 5xx, 429, lost responses, resets and
  malformed bodies between a bot and its backend, seeded and counted;
- ``intentbridge.testing.bot.serve_bot``: serve a bot project on loopback and chat with it;
- ``capture_spans``: record OpenTelemetry spans in memory for the block.

>>> with LoopbackServer(fake_bank) as url, fast_retries() as sleeps:
...     ...
"""

from intentbridge.integration.middleware.retry import fast_retries, set_testing
from intentbridge.integration.records import RecordingHook
from intentbridge.observability.tracing import capture_spans
from intentbridge.testing.faults import FaultProxy, FaultRecord, Faults, FaultStats
from intentbridge.testing.loopback import LoopbackError, LoopbackServer

__all__ = [
    "FaultProxy",
    "FaultRecord",
    "FaultStats",
    "Faults",
    "LoopbackError",
    "LoopbackServer",
    "RecordingHook",
    "capture_spans",
    "fast_retries",
    "set_testing",
]
