"""One backend: a pooled HTTP client that sends calls and classifies what came back.

``BackendClient.send`` never raises for a backend failure; every answer, refusal,
timeout or dropped connection becomes a ``Result`` with an outcome the dialogue can
word for a person:

============================  =====================================================
2xx                           ``ok`` (JSON body parsed, else text)
401, 403                      ``auth_failed`` (also: token endpoint failed)
404                           ``not_found``
408, 504                      ``timeout`` (504 on an unsafe call: ``outcome_unknown``)
429                           ``rate_limited``
other 4xx                     ``rejected`` with the backend's reason
5xx, connection refused       ``unavailable`` (500, 502 on an unsafe call: ``outcome_unknown``)
3xx (never followed)          ``error`` (on an unsafe call: ``outcome_unknown``)
answer over 10 MB (not read)  ``error`` (on an unsafe call: ``outcome_unknown``)
no connection in time         ``timeout`` (nothing was sent)
answer lost after sending     ``outcome_unknown`` for POST/PATCH/money, else ``timeout``
============================  =====================================================

"Unsafe" means the request may have changed something and repeating it blindly could
do so twice: POST and PATCH, and any call that moves money.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import structlog

from intentbridge.errors import IntegrationError
from intentbridge.integration.auth import OAuth2ClientCredentialsAuth, TokenError, auth_for
from intentbridge.integration.deadline import time_left
from intentbridge.integration.transport import (
    BOUNDED_ENCODINGS,
    ResponseTooLarge,
    default_transport,
    never_connected,
    read_body,
)
from intentbridge.project.schema import Backend
from intentbridge.text import mask_secrets
from intentbridge.types import Call, Outcome, Result

__all__ = [
    "BackendClient",
    "BackendResult",
    "error_reason",
    "is_unsafe",
    "retry_after_of",
    "short_reason",
]

log = structlog.get_logger(__name__)

_REASON_KEYS = ("detail", "error", "message")
_MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class BackendResult(Result):
    """A ``Result`` that also carries the backend's ``Retry-After`` (in seconds)."""

    retry_after: float | None = None


def retry_after_of(result: Result) -> float | None:
    """Seconds the backend asked to wait before retrying, when it said so."""
    return getattr(result, "retry_after", None)


def is_unsafe(call: Call) -> bool:
    """Whether sending ``call`` may have changed something (POST, PATCH, moving money)."""
    return call.method in ("POST", "PATCH") or call.moves_money


def error_reason(body: Any, clean: Callable[[str], str] = str) -> str | None:
    """The backend's own reason in an error body: ``detail``, ``error`` or ``message``.

    FastAPI's validation list (``[{"msg": ...}]``) is joined into one line. ``clean``
    (redaction of secrets) runs before the reason is shortened, so that no cut-off
    part of a secret is left behind.
    """
    if isinstance(body, dict):
        for key in _REASON_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value:
                return short_reason(clean(value))
            if isinstance(value, dict):
                inner = error_reason(value, clean)
                if inner:
                    return inner
            if isinstance(value, list) and value:
                msgs = [str(v.get("msg")) for v in value if isinstance(v, dict) and v.get("msg")]
                if msgs:
                    return short_reason(clean("; ".join(msgs)))
    elif isinstance(body, str) and body.strip() and len(body) <= _MAX_ERROR_TEXT:
        return clean(body.strip())
    return None


def short_reason(text: str) -> str:
    """``text`` on one line, at most :data:`_MAX_ERROR_TEXT` characters."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # isdigit() also accepts "²" and other non-ASCII digits that float() refuses
        return float(value) if value.isascii() else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


@functools.cache
def _verifying_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; one context serves every
    # backend client (SSLContext is safe to share between connections).
    return httpx.create_ssl_context()


def _not_json(constant: str) -> Any:
    # NaN and Infinity are Python's extension, not JSON: "NaN EUR" is no balance.
    raise ValueError(f"{constant} is not JSON")


def _parse_body(response: httpx.Response, content: bytes) -> Any:
    if not content:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(content, parse_constant=_not_json)
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than Python's stack; kept as text, as
            # invalid JSON is, so an answer that came is never turned into a crash
            pass
        else:
            if not _ESCAPED_SURROGATE.search(content):
                return body
            try:
                return _without_lone_surrogates(body)
            except RecursionError:  # two frames a level: less deep than json.loads goes
                pass
    return content.decode(response.encoding or "utf-8", errors="replace")


# JSON may spell a UTF-16 surrogate as an escape; one without its pair decodes to a str
# that cannot be encoded as UTF-8 (in a reply, a log line, a stored conversation).
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    return value


class BackendClient:
    """The connection to one backend: one pooled ``httpx.AsyncClient``, made on first use.

    >>> client = BackendClient("bank", config.backends["bank"])
    >>> result = await client.send(call)
    >>> await client.aclose()
    """

    def __init__(self, name: str, settings: Backend) -> None:
        self.name = name
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._auth: httpx.Auth | None = None
        base = httpx.URL(settings.base_url)
        self._origin = (base.scheme, base.host, base.port)
        connect = settings.connect_timeout or settings.timeout
        self._timeout = httpx.Timeout(settings.timeout, connect=min(connect, settings.timeout))

    def __repr__(self) -> str:
        # Settings hold credentials; only say which backend this is.
        return f"BackendClient(name={self.name!r}, base_url={self.settings.base_url!r})"

    @property
    def auth(self) -> httpx.Auth | None:
        """The credentials flow in use (None without auth); made with the HTTP client."""
        _ = self.http
        return self._auth

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled client; created lazily so construction needs no event loop."""
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.settings.max_connections,
                max_keepalive_connections=self.settings.max_connections,
            )
            verify = _verifying_ssl_context() if self.settings.verify_tls else False
            client = httpx.AsyncClient(
                transport=default_transport(
                    verify=verify, max_connections=self.settings.max_connections
                ),
                base_url=self.settings.base_url,
                # only encodings read_body decodes in bounded pieces
                headers={"Accept-Encoding": ", ".join(BOUNDED_ENCODINGS), **self.settings.headers},
                timeout=self._timeout,
                limits=limits,
                verify=verify,
                follow_redirects=False,  # a redirect could lead off the backend's host
                # one client serves every user: a cookie one user's call received must
                # never ride along on another user's call, so the jar accepts none
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
            auth = auth_for(self.settings)
            if isinstance(auth, OAuth2ClientCredentialsAuth):
                auth.bind(client)
            if auth is not None:
                client.auth = auth
            self._auth = auth
            self._client = client
        return self._client

    def redact(self, text: str) -> str:
        """``text`` with this backend's credentials (and current token) as ``***``.

        A backend may echo what it was sent in an error message ("invalid header
        Authorization: Bearer ..."); that reason reaches replies, logs and audit.
        """
        secrets = [
            getattr(self.settings.auth, name, None)
            for name in ("token", "key", "client_secret", "secret")
        ]
        if isinstance(self._auth, OAuth2ClientCredentialsAuth):
            secrets.append(self._auth.current_token)
        return mask_secrets(text, (s for s in secrets if isinstance(s, str)))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109 - an HTTP timeout
        """Whether the backend answers HTTP at all (any status counts), within ``timeout``."""
        try:
            # in total: httpx's timeouts are per read, and headers can trickle in forever
            async with asyncio.timeout(timeout):
                await self.http.head(self.settings.base_url, auth=httpx.Auth(), timeout=timeout)
        except (httpx.HTTPError, TimeoutError):
            return False
        return True

    async def send(
        self,
        call: Call,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - clips the HTTP client's timeouts
    ) -> Result:
        """Send ``call`` and classify the answer; never raises for backend failures.

        One attempt takes at most the backend's ``timeout`` in total (connecting,
        sending and reading the whole answer); ``timeout`` (seconds) and the deadline
        in force (see ``intentbridge.integration.deadline``) can only shorten it.
        """
        started = time.perf_counter()
        # The backend's timeout bounds the whole attempt, not just each read: an answer
        # that trickles in a byte at a time would otherwise never time out.
        limit = self.settings.timeout if timeout is None else min(timeout, self.settings.timeout)
        left = time_left()
        if left is not None:
            limit = min(limit, left)
        if limit <= 0:
            return self._failed(call, "timeout", "no time left before the deadline", started)

        client = self.http
        headers = list(call.headers)
        if call.idempotency_key is not None:
            headers.append(("Idempotency-Key", call.idempotency_key))
        request_timeout: httpx.Timeout | None = None
        if limit < self.settings.timeout:
            request_timeout = httpx.Timeout(
                limit, connect=min(limit, self._timeout.connect or limit)
            )
        request = client.build_request(
            call.method,
            call.path,
            params=call.query or None,
            headers=headers,
            json=call.json,
            timeout=request_timeout or self._timeout,
        )
        url = request.url
        if (url.scheme, url.host, url.port) != self._origin:
            # build_call makes this impossible; if it ever happens, refuse loudly.
            raise IntegrationError(
                f"call {call.operation!r} would leave backend {self.name!r} "
                f"({url.scheme}://{url.host}); refusing to send"
            )
        try:
            async with asyncio.timeout(limit):
                response = await client.send(request, stream=True)
                auth = self._auth
                if response.status_code == 401 and isinstance(auth, OAuth2ClientCredentialsAuth):
                    # refused, so nothing happened: once more with a new token (the old
                    # one may have been revoked or rotated early); the refusal is unread
                    await response.aclose()
                    auth.token_rejected(request)
                    response = await client.send(request, stream=True)
                content = await read_body(response)
        except TokenError as exc:
            return self._failed(call, exc.outcome, str(exc), started)
        except ResponseTooLarge as exc:
            # The backend answered, but more than we hold in memory: for a call that
            # may have changed something that answer is lost; for a read it is an error.
            outcome: Outcome = "outcome_unknown" if is_unsafe(call) else "error"
            return self._failed(call, outcome, f"{exc}; it was not read", started)
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout):
            # The request never fully left: nothing can have happened.
            return self._failed(call, "timeout", "no connection to the backend in time", started)
        except httpx.ConnectError:
            return self._failed(call, "unavailable", "could not connect to the backend", started)
        except httpx.WriteError:
            return self._failed(call, "unavailable", "connection failed while sending", started)
        except (httpx.ReadTimeout, TimeoutError):
            if never_connected(request):
                # cut short while waiting for a connection: nothing can have happened
                return self._failed(
                    call, "timeout", "no connection to the backend in time", started
                )
            if is_unsafe(call):
                return self._failed(
                    call, "outcome_unknown", "sent, but no answer before the timeout", started
                )
            return self._failed(call, "timeout", "no answer before the timeout", started)
        except httpx.RemoteProtocolError:
            # an answer came, but not one HTTP can read (a bad status line, a body on
            # a 204, which aiohttp's parser reads as the start of a next answer)
            if is_unsafe(call):
                return self._failed(
                    call, "outcome_unknown", "sent, but the answer was not valid HTTP", started
                )
            return self._failed(call, "unavailable", "the answer was not valid HTTP", started)
        except httpx.ReadError:
            if is_unsafe(call):
                return self._failed(
                    call, "outcome_unknown", "sent, but the connection dropped", started
                )
            return self._failed(call, "unavailable", "the connection dropped", started)
        except httpx.DecodingError as exc:
            # the backend answered, in a body no one can read: a money call may have
            # gone through all the same
            why = str(exc)[:_MAX_ERROR_TEXT]
            if is_unsafe(call):
                return self._failed(
                    call, "outcome_unknown", f"sent, but the answer cannot be read: {why}", started
                )
            return self._failed(call, "error", f"the answer cannot be read: {why}", started)
        except httpx.HTTPError as exc:
            return self._failed(call, "error", f"HTTP client error ({type(exc).__name__})", started)

        latency = (time.perf_counter() - started) * 1000
        return self._classify(call, response, content, latency)

    def _failed(self, call: Call, outcome: Outcome, error: str, started: float) -> Result:
        latency = (time.perf_counter() - started) * 1000
        return BackendResult(call=call, outcome=outcome, error=error, latency_ms=latency)

    def _reason(self, body: Any) -> str | None:
        return error_reason(body, self.redact)

    def _classify(
        self, call: Call, response: httpx.Response, content: bytes, latency: float
    ) -> Result:
        status = response.status_code
        body = _parse_body(response, content)
        outcome: Outcome
        error: str | None = None
        retry_after: float | None = None
        if 200 <= status < 300:
            outcome = "ok"
        elif status in (401, 403):
            outcome, error = "auth_failed", f"the backend refused our credentials (HTTP {status})"
        elif status == 404:
            outcome, error = "not_found", self._reason(body) or "not found (HTTP 404)"
        elif status == 408:
            outcome, error = "timeout", "the backend timed out reading the request (HTTP 408)"
        elif status == 504:
            # A gateway gave up waiting; the system behind it may still have acted.
            outcome = "outcome_unknown" if is_unsafe(call) else "timeout"
            error = "a gateway timed out waiting for the backend (HTTP 504)"
        elif status == 429:
            outcome, error = "rate_limited", "the backend is rate limiting (HTTP 429)"
            retry_after = _parse_retry_after(response.headers.get("retry-after"))
        elif 400 <= status < 500:
            outcome, error = (
                "rejected",
                self._reason(body) or f"the backend refused (HTTP {status})",
            )
        elif status in (500, 502) and is_unsafe(call):
            # An error inside the backend (or behind a gateway) may come after the
            # change was made: a transfer answered 500 may have gone through, and
            # "it failed" would invite the person to send it again. 503 and the
            # rest say the request was not handled.
            outcome = "outcome_unknown"
            error = f"sent, but the backend failed before confirming (HTTP {status})"
            retry_after = _parse_retry_after(response.headers.get("retry-after"))
        elif status >= 500:
            outcome, error = "unavailable", f"the backend failed (HTTP {status})"
            retry_after = _parse_retry_after(response.headers.get("retry-after"))
        elif is_unsafe(call):
            # A redirect is not followed, but the backend had the request and may have
            # acted on it (303 See Other is how many say "done, look there").
            outcome = "outcome_unknown"
            error = f"sent, but the backend answered HTTP {status} (redirects are not followed)"
        else:
            outcome, error = "error", f"unexpected HTTP {status} (redirects are not followed)"
        return BackendResult(
            call=call,
            outcome=outcome,
            status_code=status,
            body=body,
            error=error,
            latency_ms=latency,
            retry_after=retry_after,
        )
