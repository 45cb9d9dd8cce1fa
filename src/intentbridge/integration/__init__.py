"""The integration layer: safe backend calls, auth, middleware, mapping, templates.

The dialogue layer needs ``Integrations`` (``execute``, ``check_ready``, ``aclose``),
``render`` for replies and ``check_templates`` at load time; the rest is for
extending and testing.
"""

from intentbridge.integration.auth import (
    ApiKeyAuth,
    BearerTokenAuth,
    OAuth2ClientCredentialsAuth,
    TokenError,
)
from intentbridge.integration.backend import BackendClient
from intentbridge.integration.breaker_state import (
    BreakerDecision,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from intentbridge.integration.deadline import deadline_scope, time_left
from intentbridge.integration.decisions import DecisionHook
from intentbridge.integration.executor import Integrations
from intentbridge.integration.mapping import ResponseMapping, map_response
from intentbridge.integration.rate_limits import (
    IncomingLimiter,
    RateLimitDecision,
    RateLimits,
    rate_limits_enabled,
)
from intentbridge.integration.records import CallRecord, Hook, RecordingHook
from intentbridge.integration.request import build_call
from intentbridge.integration.templates import check_templates, render, try_render

__all__ = [
    "ApiKeyAuth",
    "BackendClient",
    "BearerTokenAuth",
    "BreakerDecision",
    "CallRecord",
    "DecisionHook",
    "Hook",
    "IncomingLimiter",
    "Integrations",
    "MemoryBreakerStore",
    "OAuth2ClientCredentialsAuth",
    "RateLimitDecision",
    "RateLimits",
    "RecordingHook",
    "RedisBreakerStore",
    "ResponseMapping",
    "TokenError",
    "build_call",
    "check_templates",
    "deadline_scope",
    "map_response",
    "rate_limits_enabled",
    "render",
    "time_left",
    "try_render",
]
