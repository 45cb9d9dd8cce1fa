"""What you need to test a bot and its integrations, also used by our own tests.

- ``LoopbackServer``: run an ASGI app (your fake backend) as a real HTTP server;
- ``fast_retries`` / ``set_testing``: retries record their waits instead of sleeping;
- ``RecordingHook``: collect the ``CallRecord`` of every backend call.

>>> with LoopbackServer(fake_bank) as url, fast_retries() as sleeps:
...     ...
"""

from intentbridge.integration.middleware.retry import fast_retries, set_testing
from intentbridge.integration.records import RecordingHook
from intentbridge.testing.loopback import LoopbackError, LoopbackServer

__all__ = ["LoopbackError", "LoopbackServer", "RecordingHook", "fast_retries", "set_testing"]
