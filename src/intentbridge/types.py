"""The shapes that travel along the pipeline, declared once.

Every arrow in DESIGN.md's picture passes one of these values. They are frozen
dataclasses: cheap to build, safe to share between tasks, and easy to compare in
tests. pydantic lives at the edges (``bot.yaml``, HTTP bodies), not here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

FALLBACK_INTENT = "nlu_fallback"
"""Intent name an interpreter returns when no intent is confident enough."""

OUT_OF_SCOPE_INTENT = "oos"
"""Intent name data sets use for messages outside the bot's domain."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sent a message, as established by the channel (never by message text)."""

    user_id: str
    channel: str = "rest"
    verified: bool = False
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """What a user sent on a channel."""

    text: str
    sender: str
    channel: str = "rest"
    identity: Identity | None = None
    message_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money; ``currency`` is an ISO 4217 code or None when unsaid.

    >>> Money(Decimal("50"), "EUR")
    """

    amount: Decimal
    currency: str | None = None

    def __str__(self) -> str:
        # two places as money is written, but never rounded away: 0.001 stays 0.001
        exact = self.amount.as_tuple().exponent
        shown = f"{self.amount:.2f}" if isinstance(exact, int) and exact >= -2 else str(self.amount)
        return f"{shown} {self.currency}" if self.currency else shown


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed value found in a message.

    ``start``/``end`` are character offsets into the message text (end exclusive);
    ``text`` is the covered substring; ``value`` the normalised value (a ``Money``,
    a ``datetime.date``, a canonical synonym, a number, or the text itself).

    >>> Entity("to_account", "savings", 14, 21, "savings", role="to")
    """

    entity: str
    value: Any
    start: int
    end: int
    text: str
    role: str | None = None
    confidence: float = 1.0
    extractor: str = ""


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What a message means: the best intent, its confidence, and the entities."""

    text: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...] = ()
    ranking: tuple[IntentScore, ...] = ()

    def entity(self, name: str, role: str | None = None) -> Entity | None:
        """The first entity called ``name`` (and with ``role`` when given)."""
        for ent in self.entities:
            if ent.entity == name and (role is None or ent.role == role):
                return ent
        return None


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True, slots=True)
class Call:
    """A request about to be made to a backend, built from an operation.

    ``path`` is already percent-encoded and relative to the backend's base URL.
    ``headers`` never carry credentials: auth middleware adds those on the way out.
    """

    backend: str
    operation: str
    method: HttpMethod
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    idempotency_key: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """The operation parameters the call was built from (for audit, redacted there)."""
    moves_money: bool = False


Outcome = Literal[
    "ok",
    "rejected",  # the backend said no (4xx with a reason)
    "not_found",
    "auth_failed",
    "timeout",
    "unavailable",  # connection refused, 5xx, breaker open
    "rate_limited",
    "outcome_unknown",  # request sent, answer lost: it may or may not have happened
    "denied",  # our own policy refused before any call
    "error",
]


@dataclass(frozen=True, slots=True)
class Result:
    """What came back from a call: the outcome class, status, body and timing."""

    call: Call
    outcome: Outcome
    status_code: int | None = None
    body: Any = None
    data: Any = None
    """The mapped response (after the operation's response mapping)."""
    error: str | None = None
    """A short, secret-free description of what went wrong."""
    latency_ms: float = 0.0
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message the bot sends back."""

    text: str
    buttons: tuple[Button, ...] = ()
    recipient_id: str = ""


Next = Callable[[Call], Awaitable[Result]]
Middleware = Callable[[Call, Next], Awaitable[Result]]
"""An async step around every outgoing call: ``async def step(call, next) -> Result``."""
