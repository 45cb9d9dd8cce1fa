"""The ``bot.yaml`` schema: what a bot project may declare, validated with pydantic.

A minimal project::

    backends:
      bank:
        base_url: ${COREBANK_URL:-http://127.0.0.1:8001}
        auth: {type: oauth2_client_credentials, token_url: /oauth/token,
               client_id: my-bot, client_secret: ${BANK_SECRET}}
    operations:
      check_balance:
        intent: check_balance
        backend: bank
        method: GET
        path: /customers/{customer}/accounts
        parameters:
          customer: {source: user, field: user_id}
        response: {accounts: "[*]"}
        reply:
          ok: |-
            {% for a in data.accounts %}{{ a.name }}: {{ a.balance | money(a.currency) }}
            {% endfor %}

Placeholders ``{name}`` and ``{name.attr}`` in ``path``, ``query``, ``headers`` and
``body`` refer to operation parameters; in ``body`` a string that is exactly one
placeholder keeps the value's type (a number stays a number). ``${VAR}`` and
``${VAR:-default}`` anywhere in the file are replaced from the environment when the
project loads.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*\}")

FAILURE_CLASSES = (
    "timeout",
    "rate_limited",
    "unavailable",
    "auth_failed",
    "rejected",
    "not_found",
    "outcome_unknown",
    "denied",
    "error",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- backends -----------------------------------------------------------------------


class NoAuth(_Strict):
    type: Literal["none"] = "none"


class BearerAuth(_Strict):
    """A static bearer token: ``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: str = Field(min_length=1, repr=False)


class ApiKeyAuth(_Strict):
    """An API key sent in a header (default ``X-API-Key``) or a query parameter."""

    type: Literal["api_key"]
    key: str = Field(min_length=1, repr=False)
    header: str | None = "X-API-Key"
    query_param: str | None = None


class OAuth2ClientCredentials(_Strict):
    """OAuth2 client credentials; tokens are cached and refreshed ahead of expiry."""

    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(description="absolute, or relative to the backend's base_url")
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    scope: str | None = None
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    refresh_margin: float = Field(30.0, ge=0, description="seconds before expiry to refresh")


class HmacSignatureAuth(_Strict):
    """Sign each request body (webhook style): HMAC-SHA256 over ``timestamp.body``."""

    type: Literal["hmac_signature"]
    secret: str = Field(min_length=1, repr=False)


Auth = Annotated[
    NoAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials | HmacSignatureAuth,
    Field(discriminator="type"),
]


class RetrySettings(_Strict):
    attempts: int = Field(3, ge=1, le=10)
    backoff: float = Field(0.1, ge=0, description="first wait in seconds; doubles each time")
    max_backoff: float = Field(2.0, ge=0)


class BreakerSettings(_Strict):
    """When to stop calling a failing backend, and when to try it again.

    Failures are outcomes ``timeout``, ``unavailable`` and ``outcome_unknown`` (after
    retries); refusals (4xx) and auth problems show the backend is up and never count.
    The circuit opens after ``failure_threshold`` failures in a row, or, with
    ``failure_ratio``, when that share of at least ``min_calls`` calls in ``window``
    seconds failed. While open, calls fail at once as ``unavailable``; after
    ``reset_timeout`` seconds up to ``half_open_max_calls`` trial calls go through and
    the first answer closes the circuit again (success) or reopens it (failure).
    """

    failure_threshold: int = Field(5, ge=1, le=1000, description="failures in a row that open")
    failure_ratio: float | None = Field(None, gt=0, le=1, description="failed share that opens")
    window: float = Field(30.0, gt=0, le=3600, description="seconds failure_ratio looks back")
    min_calls: int = Field(10, ge=1, le=100_000, description="calls before failure_ratio applies")
    reset_timeout: float = Field(30.0, gt=0, le=3600, description="seconds open before a trial")
    half_open_max_calls: int = Field(1, ge=1, le=100, description="trial calls at once")


class TimeoutStepSettings(_Strict):
    """Settings of the ``timeout`` middleware: the whole call (retries included)."""

    seconds: float = Field(gt=0, le=300)


BUILTIN_MIDDLEWARE = ("rate_limit", "breaker", "bulkhead", "retry", "timeout")
"""Names of the built-in middleware a ``middleware:`` list may use."""

DEFAULT_MIDDLEWARE = ("rate_limit", "breaker", "bulkhead", "retry")
"""The chain when a backend names none, outermost first: throttled calls never count
against the breaker or hold a slot; an open breaker answers before queueing for a slot;
retries run inside one slot and count as one call for the breaker."""

_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_STATEFUL_SETTINGS = {
    "rate_limit": "'rate_limit' on the backend and 'user_rate_limit' on operations",
    "breaker": "'breaker' on the backend",
    "bulkhead": "'max_concurrency' and 'concurrency_wait' on the backend",
}


def middleware_step(entry: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The name and settings of one validated ``middleware:`` entry.

    >>> middleware_step("retry")
    ('retry', {})
    >>> middleware_step({"timeout": {"seconds": 8}})
    ('timeout', {'seconds': 8})
    """
    if isinstance(entry, str):
        return entry, {}
    [(name, settings)] = entry.items()
    return name, dict(settings or {})


def _check_middleware_entry(value: Any) -> str | dict[str, Any]:
    settings: Any
    if isinstance(value, str):
        name, settings = value, {}
    elif isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value)), str):
        [(name, settings)] = value.items()
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise ValueError(f"the settings of middleware {name!r} must be a mapping")
    else:
        raise ValueError(
            "a middleware entry is a built-in name (e.g. retry), a dotted path "
            "'package.module:factory', or a one-key mapping {name: {settings}}"
        )
    if name in _STATEFUL_SETTINGS and settings:
        raise ValueError(
            f"{name!r} takes no settings here; configure it with {_STATEFUL_SETTINGS[name]}"
        )
    if name in ("retry", "timeout") and (settings or name == "timeout"):
        model = RetrySettings if name == "retry" else TimeoutStepSettings
        try:
            model.model_validate(settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            raise ValueError(f"{name} {where}: {err['msg']}") from None
    elif name not in BUILTIN_MIDDLEWARE and not _DOTTED_PATH.match(name):
        raise ValueError(
            f"unknown middleware {name!r}; use one of {', '.join(BUILTIN_MIDDLEWARE)} "
            "or a dotted path 'package.module:factory'"
        )
    return name if not settings else {name: settings}


MiddlewareEntry = Annotated[
    str | dict[str, Any],
    PlainValidator(_check_middleware_entry, json_schema_input_type=str | dict[str, Any]),
]
"""One ``middleware:`` entry: ``retry``, ``pkg.mod:factory`` or ``{name: {settings}}``."""


def _check_middleware_list(value: list[Any]) -> list[Any]:
    names = [middleware_step(entry)[0] for entry in value]
    repeated = sorted({n for n in names if n in BUILTIN_MIDDLEWARE and names.count(n) > 1})
    if repeated:
        raise ValueError(f"built-in middleware listed more than once: {', '.join(repeated)}")
    return value


def _check_rate(value: str) -> str:
    import limits  # lazily: a heavy import, needed only when a rate is configured

    try:
        limits.parse_many(value)
    except ValueError:
        raise ValueError(
            f"not a rate limit: {value!r}; write e.g. '5/minute', '50/second' or "
            "'10 per 2 minutes' (several with ';')"
        ) from None
    return value


MiddlewareList = Annotated[list[MiddlewareEntry], AfterValidator(_check_middleware_list)]
RateLimit = Annotated[str, AfterValidator(_check_rate)]
"""A rate in the ``limits`` notation: ``5/minute``, ``50/second``, ``10 per 2 minutes``."""


class Backend(_Strict):
    """A system the bot talks to."""

    base_url: str
    auth: Auth = NoAuth()
    timeout: float = Field(
        5.0, gt=0, le=300, description="seconds one attempt may take: connect, send and read"
    )
    connect_timeout: float | None = Field(None, gt=0, le=60)
    headers: dict[str, str] = Field(default_factory=dict)
    retry: RetrySettings = RetrySettings()
    max_connections: int = Field(50, ge=1, le=10_000)
    verify_tls: bool = True
    middleware: MiddlewareList | None = Field(
        None, description="steps around each call, outermost first; None = DEFAULT_MIDDLEWARE"
    )
    breaker: BreakerSettings = BreakerSettings()
    max_concurrency: int = Field(20, ge=1, le=10_000, description="calls in flight at once")
    concurrency_wait: float = Field(
        1.0, ge=0, le=60, description="seconds to wait for a free slot (never past the deadline)"
    )
    rate_limit: RateLimit | None = Field(None, description="the backend's quota, e.g. '50/second'")
    rate_limit_wait: float = Field(
        1.0, ge=0, le=60, description="seconds to wait for quota (never past the deadline)"
    )

    @field_validator("base_url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"must be an absolute http(s) URL such as https://api.example.com, got {value!r}"
            )
        return value.rstrip("/")


# --- operations ---------------------------------------------------------------------

ParameterType = Literal["string", "integer", "number", "money", "date", "boolean", "any"]


class Lookup(_Strict):
    """Resolve a spoken value against the user's own data via another operation.

    ``account`` = "savings" becomes the id of the user's savings account by calling
    ``operation`` and picking the item whose ``match`` field equals the value; the
    item's ``value`` field is used. A value that matches no item is invalid, so an
    id or name the user does not own is never passed on.
    """

    operation: str
    match: str = "name"
    value: str = "id"
    items: str = Field("@", description="JMESPath to the list in the operation's mapped data")


class Parameter(_Strict):
    """Where one operation parameter comes from, its type and how to ask for it."""

    source: Literal["entity", "user", "conversation", "constant"] = "entity"
    entity: str | None = None
    role: str | None = None
    field: str | None = Field(None, description="user profile field for source=user")
    slot: str | None = Field(None, description="conversation slot for source=conversation")
    value: Any = None
    type: ParameterType = "string"
    required: bool = True
    default: Any = None
    choices: list[str] | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    default_currency: str | None = None
    currencies: list[str] | None = Field(None, description="money: the currencies accepted")
    ask: str | None = Field(None, description="question asked when the value is missing")
    invalid: str | None = Field(None, description="reply when a given value is not valid")
    lookup: Lookup | None = None
    remember: str | None = Field(None, description="store the value in this conversation slot")
    sensitive: bool = False

    @model_validator(mode="after")
    def _source_fields(self) -> Parameter:
        if self.source == "user" and not self.field:
            raise ValueError("a parameter with source 'user' needs 'field' (e.g. user_id)")
        if self.source == "conversation" and not self.slot:
            raise ValueError("a parameter with source 'conversation' needs 'slot'")
        if self.source == "constant" and self.value is None:
            raise ValueError("a parameter with source 'constant' needs 'value'")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return self


class Confirm(_Strict):
    """Ask before acting; the answer is bound to the exact parameters shown."""

    text: str
    accept: str = Field("Yes", description="title of the button that confirms")
    decline: str = Field("No", description="title of the button that declines")


class Resolve(_Strict):
    """How to learn what happened to a money-moving call whose answer was lost.

    ``operation`` is called with the call's parameters plus ``idempotency_key``;
    when ``found`` (JMESPath over its mapped data) gives a non-empty value, the call
    happened and that value is the result. Otherwise the call is sent again with the
    same key, which the backend must treat as the same request.
    """

    operation: str
    found: str = "@"


class Operation(_Strict):
    """One backend action the bot may take."""

    intent: str | None = Field(None, description="intent that starts it; None = only via lookup")
    backend: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    response: dict[str, str] = Field(
        default_factory=dict, description="name -> JMESPath over the response body"
    )
    reply: dict[str, str] = Field(
        default_factory=dict, description="'ok' and failure classes -> Jinja2 template"
    )
    error_reason: str | None = Field(
        None, description="JMESPath to the backend's own reason in an error body"
    )
    confirm: Confirm | None = None
    moves_money: bool = False
    idempotent: bool | None = None
    resolve: Resolve | None = None
    max_attempts_per_parameter: int = Field(3, ge=1, le=10)
    description: str | None = None
    middleware: MiddlewareList | None = Field(
        None, description="replaces the backend's middleware list for this operation"
    )
    user_rate_limit: RateLimit | None = Field(
        None, description="calls one user may make, e.g. '5/minute' (over: rate_limited)"
    )

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"text": value}
        if value is True:
            raise ValueError(
                "confirm needs the question to ask, e.g. confirm: 'Send {{ params.amount | "
                "money }}?'"
            )
        if value is False:
            return None
        return value

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not value.startswith("/") or "://" in value or value.startswith("//"):
            raise ValueError(
                "must be a path relative to the backend's base_url starting with '/', "
                f"got {value!r}"
            )
        return value

    @field_validator("reply")
    @classmethod
    def _known_reply_keys(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"ok", *FAILURE_CLASSES}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(
                f"unknown reply key(s) {unknown}; use 'ok' or one of {sorted(FAILURE_CLASSES)}"
            )
        return value

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> Operation:
        used = set(_PLACEHOLDER.findall(self.path))
        for text in [*self.query.values(), *self.headers.values()]:
            used |= set(_PLACEHOLDER.findall(text))
        used |= _body_placeholders(self.body)
        missing = sorted(used - set(self.parameters))
        if missing:
            raise ValueError(
                f"placeholder(s) {missing} are not declared under 'parameters'; declare them "
                "or remove them from path/query/headers/body"
            )
        return self

    @property
    def is_about_the_user(self) -> bool:
        """Whether the path names the user's own resource and nothing else.

        Every placeholder of ``path`` comes from the user's profile, as ``customer`` in
        ``/customers/{customer}/accounts`` with ``customer: {source: user, field:
        user_id}``: a not-found answer then means the backend does not know the user,
        and the reply says so (``responses.user_not_found``).
        """
        names = _PLACEHOLDER.findall(self.path)
        return bool(names) and all(self.parameters[n].source == "user" for n in names)

    @property
    def is_idempotent(self) -> bool:
        """Whether repeating the call is harmless (or made so by an idempotency key)."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method in ("GET", "PUT", "DELETE") or self.moves_money


def _body_placeholders(body: Any) -> set[str]:
    if isinstance(body, str):
        return set(_PLACEHOLDER.findall(body))
    if isinstance(body, dict):
        return set().union(*(_body_placeholders(v) for v in body.values()))
    if isinstance(body, list):
        return set().union(*(_body_placeholders(v) for v in body))
    return set()


# --- understanding, dialogue, responses ---------------------------------------------


class NluSettings(_Strict):
    data: list[str] = Field(default_factory=lambda: ["data"])
    pipeline: str = "fast"
    threshold: float | None = Field(None, ge=0, le=1, description="fallback below this")
    model_dir: str = ".intentbridge/model"


class DialogueSettings(_Strict):
    affirm_intents: list[str] = Field(default_factory=lambda: ["affirm"])
    deny_intents: list[str] = Field(default_factory=lambda: ["deny"])
    cancel_intents: list[str] = Field(default_factory=lambda: ["cancel"])
    help_intents: list[str] = Field(default_factory=lambda: ["help"])
    inform_intents: list[str] = Field(default_factory=lambda: ["inform"])
    history_turns: int = Field(20, ge=0, le=1000)


class Responses(_Strict):
    """Fixed replies. Keys other than the named ones answer the intent of that name."""

    model_config = ConfigDict(extra="allow", frozen=True)

    fallback: str = "Sorry, I didn't understand that. You can say 'help' to see what I can do."
    help: str = "I can help with: {{ operations | join(', ') }}."
    cancelled: str = "OK, I've cancelled that."
    nothing_to_cancel: str = "There's nothing to cancel."
    declined: str = "OK, I won't do that."
    confirm_reask: str = "Please answer yes or no."
    too_many_attempts: str = (
        "I still couldn't get a valid {{ parameter }}, so I've stopped this request. "
        "You can start again whenever you like."
    )
    ask_default: str = "What {{ parameter | replace('_', ' ') }} should I use?"
    invalid_default: str = (
        "{{ value }} isn't a valid {{ parameter | replace('_', ' ') }}: {{ reason }}."
    )
    timeout: str = "The service is taking too long to answer. Please try again in a moment."
    rate_limited: str = "The service is busy right now. Please try again in a minute."
    unavailable: str = "Sorry, that service is unavailable right now. Please try again later."
    auth_failed: str = "I couldn't sign in to the service. Please try again later."
    rejected: str = "The service refused that request{% if reason %}: {{ reason }}{% endif %}."
    not_found: str = "I couldn't find that."
    outcome_unknown: str = (
        "I couldn't confirm whether that went through yet. I'll check and let you know; "
        "please don't repeat it."
    )
    denied: str = "Sorry, you're not allowed to do that."
    too_many_messages: str = (
        "You're sending messages faster than I can keep up with. Please wait a moment."
    )
    error: str = "Something went wrong on my side. Please try again."
    nothing_to_confirm: str = "There's nothing waiting for your confirmation right now."
    already_done: str = "That has already been done, and I haven't done it again: {{ reply }}"
    lookup_not_found: str = (
        "I couldn't find anything on record for you, so I can't do that. Nothing was done."
    )
    user_not_found: str = (
        "Sorry, I couldn't find any records for you here, so there's nothing I can show "
        "you. If you think that's a mistake, please get in touch with us."
    )
    which_value: str = (
        "I'm not sure which {{ parameter | replace('_', ' ') }} you mean: "
        "{{ options | join(' or ') }}."
    )
    unreadable: str = (
        "{{ value }} isn't a valid {{ parameter | replace('_', ' ') }}: please write it in "
        "plain digits, like 12.50."
    )


class IncomingWebhook(_Strict):
    """Events a system pushes to ``POST /webhooks/in/{source}``, turned into messages.

    ``messages`` maps an event type to a template rendered with ``event``; the message
    lands in the outbox of the user that ``user`` (JMESPath over the event) names.
    """

    secret: str = Field(min_length=1, repr=False)
    tolerance: float = Field(300.0, gt=0, description="seconds a timestamp may be off")
    event_id: str = Field("id", description="JMESPath to the event's unique id")
    event_type: str = Field("type", description="JMESPath to the event's type")
    user: str = Field(description="JMESPath to the user id the event is about")
    channel: str = "rest"
    messages: dict[str, str] = Field(default_factory=dict)


class ChannelSettings(_Strict):
    """Per-channel settings: how long a turn may take, and the channel's shared token."""

    deadline: float = Field(5.0, gt=0, le=300, description="seconds a turn may take in all")
    token: str | None = Field(None, repr=False)


class PendingSettings(_Strict):
    """Resolving money-moving calls whose outcome is unknown."""

    interval: float = Field(5.0, gt=0, description="seconds between resolution rounds")
    min_age: float = Field(
        30.0,
        ge=0,
        description="a 'pending' call younger than this may "
        "still be in flight in some worker; it is left alone",
    )
    max_age: float = Field(86_400.0, gt=0, description="give up (and say so) after this long")


class LimitSettings(_Strict):
    """Rate limits on incoming messages, and where limit counters and breaker state live.

    ``storage_url`` ``memory://`` keeps them in this process; ``redis://host:6379/0``
    shares them between all worker processes (keys start with ``key_prefix``). The
    environment variable ``INTENTBRIDGE_RATE_LIMITS=off`` switches every rate limit
    off (backend quotas, per-user and per-sender limits), e.g. for load tests.
    """

    incoming_per_sender: RateLimit | None = Field(
        None, description="messages one sender may send, e.g. '30/minute'"
    )
    storage_url: str = Field("memory://", description="memory:// or redis://host:6379/0")
    key_prefix: str = Field("intentbridge", pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value != "memory://" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"unsupported storage {value.split('://', 1)[0]!r}; use memory:// or "
                "redis://host:6379/0"
            )
        return value


class StoreSettings(_Strict):
    url: str = Field(
        "sqlite:///.intentbridge/store.sqlite3", description="sqlite:/// or postgresql://"
    )


class UserProfile(_Strict):
    """Demo profiles keyed by user id; real deployments take them from the channel."""

    model_config = ConfigDict(extra="allow", frozen=True)


class BotConfig(_Strict):
    """The whole ``bot.yaml``."""

    name: str = "bot"
    language: str = "en"
    nlu: NluSettings = NluSettings()
    dialogue: DialogueSettings = DialogueSettings()
    backends: dict[str, Backend] = Field(default_factory=dict)
    operations: dict[str, Operation] = Field(default_factory=dict)
    responses: Responses = Responses()
    store: StoreSettings = StoreSettings()
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    webhooks: dict[str, IncomingWebhook] = Field(default_factory=dict)
    pending: PendingSettings = PendingSettings()
    limits: LimitSettings = LimitSettings()
    users: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def channel(self, name: str) -> ChannelSettings:
        """Settings of channel ``name`` (defaults when it is not configured)."""
        return self.channels.get(name) or _DEFAULT_CHANNEL

    @field_validator("operations", "backends")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(_NAME, name):
                raise ValueError(f"name {name!r} must be letters, digits and '_' only")
        return value

    def _uses_rate_limit(self, name: str, op: Operation) -> bool:
        backend = self.backends.get(op.backend)
        entries = op.middleware
        if entries is None:
            entries = backend.middleware if backend is not None else None
        if entries is None:
            return True  # the default chain has it
        return any(middleware_step(entry)[0] == "rate_limit" for entry in entries)

    def reference_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references pydantic cannot check field by field: (location, message)."""
        errors: list[tuple[tuple[str | int, ...], str]] = []
        intents: dict[str, str] = {}
        for name, op in self.operations.items():
            if op.backend not in self.backends:
                known = ", ".join(sorted(self.backends)) or "none declared"
                errors.append(
                    (
                        ("operations", name, "backend"),
                        f"unknown backend {op.backend!r} (known: {known}); declare it under "
                        "'backends' or fix the name",
                    )
                )
            if op.resolve and op.resolve.operation not in self.operations:
                errors.append(
                    (
                        ("operations", name, "resolve", "operation"),
                        f"unknown operation {op.resolve.operation!r}",
                    )
                )
            if op.user_rate_limit and not self._uses_rate_limit(name, op):
                errors.append(
                    (
                        ("operations", name, "user_rate_limit"),
                        "this operation's middleware list has no 'rate_limit', so the limit "
                        "would never apply; add rate_limit to the list",
                    )
                )
            for pname, param in op.parameters.items():
                if param.lookup and param.lookup.operation not in self.operations:
                    errors.append(
                        (
                            ("operations", name, "parameters", pname, "lookup", "operation"),
                            f"unknown operation {param.lookup.operation!r}",
                        )
                    )
            if op.intent is None:
                continue
            if op.intent in intents:
                errors.append(
                    (
                        ("operations", name, "intent"),
                        f"intent {op.intent!r} is already handled by operation "
                        f"{intents[op.intent]!r}; one intent starts one operation",
                    )
                )
            intents[op.intent] = name
        return errors

    def operation_for_intent(self, intent: str) -> tuple[str, Operation] | None:
        for name, op in self.operations.items():
            if op.intent == intent:
                return name, op
        return None


_DEFAULT_CHANNEL = ChannelSettings()
