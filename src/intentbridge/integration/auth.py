"""Credentials on outgoing requests, as httpx ``Auth`` classes.

``BearerTokenAuth`` and ``ApiKeyAuth`` are one-step flows. ``OAuth2ClientCredentialsAuth``
fetches an access token with the client-credentials grant, caches it, refreshes it
``refresh_margin`` seconds before it expires, lets exactly one task fetch while any
number of concurrent calls wait for it (an ``asyncio.Lock``), and on a 401 from the
API drops the token, fetches a fresh one and retries the request once.

Why not authlib's ``AsyncOAuth2Client``: it is a whole HTTP client with its own pool,
while a backend must own exactly one pooled client; it has no "401 → refresh once →
retry once" step; and its errors (and its ``OAuth2Token``, a ``dict``) would carry the
token into reprs and messages. So the flow is written on httpx directly (the token
request goes through the backend's own client, without its auth flow), and authlib does
the part it is good at: encoding the client credentials for ``client_secret_basic`` or
``client_secret_post`` (``authlib.oauth2.auth.ClientAuth``).

Token endpoint failures raise ``TokenError``; the backend client turns it into the
outcome ``auth_failed``. Secrets never appear in an exception message or ``repr``.

>>> auth = OAuth2ClientCredentialsAuth("https://bank/oauth/token", "bot", secret)
>>> auth.bind(client)   # the httpx.AsyncClient that fetches tokens
>>> client.auth = auth
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from authlib.oauth2.auth import ClientAuth

from intentbridge.errors import IntegrationError
from intentbridge.integration.signing import signature_headers
from intentbridge.integration.transport import ResponseTooLarge, read_body
from intentbridge.project import schema
from intentbridge.types import Outcome

__all__ = [
    "ApiKeyAuth",
    "BearerTokenAuth",
    "OAuth2ClientCredentialsAuth",
    "TokenError",
    "auth_for",
]


# The token request itself must not go through the backend's auth flow.
_NO_AUTH = httpx.Auth()

MAX_TOKEN_LENGTH = 16 * 1024
"""Longest access token accepted (large JWTs are a few KB; servers refuse big headers)."""
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
"""A token endpoint's answer larger than this (decoded) is refused."""
# RFC 6749 (A.12): an access token is printable ASCII (VSCHAR); never CR, LF or NUL.
_TOKEN_CHARS = re.compile(r"[\x20-\x7e]+")


class TokenError(IntegrationError):
    """The OAuth2 token endpoint could not give a token (down, refused, bad answer).

    The message names the endpoint and what went wrong, never the credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        token_url: str,
        status_code: int | None = None,
        outcome: Outcome = "auth_failed",
    ) -> None:
        self.token_url = token_url
        self.status_code = status_code
        # an unreachable or failing token endpoint means the backend is down, not that
        # our credentials are wrong: the user is told so
        self.outcome: Outcome = outcome
        super().__init__(message)


class BearerTokenAuth(httpx.Auth):
    """A static token sent as ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerTokenAuth(token='***')"


class ApiKeyAuth(httpx.Auth):
    """An API key in a header (default ``X-API-Key``) or, if ``query_param``, in the query."""

    def __init__(
        self, key: str, *, header: str | None = "X-API-Key", query_param: str | None = None
    ) -> None:
        if not header and not query_param:
            raise ValueError("ApiKeyAuth needs a header or a query_param to carry the key")
        self._key = key
        self._header = None if query_param else header
        self._query_param = query_param

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._query_param:
            request.url = request.url.copy_merge_params({self._query_param: self._key})
        elif self._header:
            request.headers[self._header] = self._key
        yield request

    def __repr__(self) -> str:
        where = (
            f"query_param={self._query_param!r}"
            if self._query_param
            else f"header={self._header!r}"
        )
        return f"ApiKeyAuth(key='***', {where})"


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float  # time.monotonic() after which a new token is fetched


class OAuth2ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client credentials with caching and single-flight refresh.

    ``bind(client)`` gives it the ``httpx.AsyncClient`` that fetches tokens (the
    backend's pooled client); it is async-only. A 401 is retried once with a new token
    by the backend client (:meth:`token_rejected`), not here: an auth flow that sees
    responses makes httpx read each one whole, past the backend's size bound.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        refresh_margin: float = 30.0,
        default_expires_in: float = 300.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_auth = ClientAuth(client_id, client_secret, auth_method)
        self.scope = scope
        self.refresh_margin = refresh_margin
        self.default_expires_in = default_expires_in
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        # Each finished fetch bumps the generation; tasks that queued behind a failed fetch
        # share its error instead of hammering a down token endpoint one by one.
        self._generation = 0
        self._last_error: TokenError | None = None
        self._client: httpx.AsyncClient | None = None
        self.fetch_count = 0
        """How many token requests were made (observable in tests and metrics)."""

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentialsAuth(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, client_secret='***')"
        )

    def bind(self, client: httpx.AsyncClient) -> None:
        """Use ``client`` to request tokens."""
        self._client = client

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        self._token = None

    @property
    def current_token(self) -> str | None:
        """The cached access token, to redact it where a backend echoes it back."""
        token = self._token
        return None if token is None else token.value

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2ClientCredentialsAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._current_token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        yield request

    def token_rejected(self, request: httpx.Request) -> None:
        """The backend answered 401 to ``request``: the token it carried may have been
        revoked or rotated early, so the next request fetches a new one. When another
        request has already replaced that token, nothing changes (one fetch for many).
        """
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        token = self._token
        if token is not None and token.value == sent:
            self._token = None

    async def _current_token(self) -> _Token:
        token = self._token
        if token is not None and time.monotonic() < token.refresh_at:
            return token
        generation = self._generation
        async with self._lock:
            # Whoever held the lock before us may already have fetched a fresh token.
            token = self._token
            if token is not None and time.monotonic() < token.refresh_at:
                return token
            if self._generation != generation and self._last_error is not None:
                error = self._last_error
                raise TokenError(
                    str(error),
                    token_url=error.token_url,
                    status_code=error.status_code,
                    outcome=error.outcome,
                )
            self._token = None
            try:
                token = await self._fetch()
            except TokenError as exc:
                self._last_error = exc
                raise
            finally:
                self._generation += 1
            self._last_error = None
            self._token = token
            return token

    async def _fetch(self) -> _Token:
        if self._client is None:
            raise TokenError("no HTTP client bound for token requests", token_url=self.token_url)
        form: list[tuple[str, str]] = [("grant_type", "client_credentials")]
        if self.scope:
            form.append(("scope", self.scope))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        url, headers, body = self._client_auth.prepare(
            "POST", self.token_url, headers, urlencode(form)
        )
        self.fetch_count += 1
        request = self._client.build_request("POST", url, content=body, headers=headers)
        try:
            response = await self._client.send(request, auth=_NO_AUTH, stream=True)
            # a token answer is a few hundred bytes; a huge or inflating one is refused
            content = await read_body(response, MAX_TOKEN_RESPONSE_BYTES)
        except ResponseTooLarge as exc:  # on the wire (aiohttp) or once decoded
            raise TokenError(
                f"token endpoint {self.token_url}: {exc}", token_url=self.token_url
            ) from None
        except httpx.TimeoutException:
            raise TokenError(
                f"token endpoint {self.token_url} did not answer in time",
                token_url=self.token_url,
                outcome="timeout",
            ) from None
        except httpx.HTTPError as exc:
            raise TokenError(
                f"could not reach token endpoint {self.token_url} ({type(exc).__name__})",
                token_url=self.token_url,
                outcome="unavailable",
            ) from None
        if response.status_code != 200:
            raise TokenError(
                f"token endpoint {self.token_url} answered HTTP {response.status_code}"
                f"{_oauth_error(content)}",
                token_url=self.token_url,
                status_code=response.status_code,
                outcome="unavailable" if response.status_code >= 500 else "auth_failed",
            )
        payload = _json_or_none(content)
        value = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value:
            raise TokenError(
                f"token endpoint {self.token_url} answered without an access_token",
                token_url=self.token_url,
                status_code=response.status_code,
            )
        if len(value) > MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(value):
            # It goes into a header of every call: CR/LF would inject headers, and a
            # huge one is refused by the API as a malformed request.
            raise TokenError(
                f"token endpoint {self.token_url} answered an access_token that cannot be "
                f"sent (over {MAX_TOKEN_LENGTH} characters, or not printable ASCII)",
                token_url=self.token_url,
                status_code=response.status_code,
            )
        expires_in = payload.get("expires_in")
        try:
            lifetime = float(expires_in) if expires_in is not None else self.default_expires_in
        except (TypeError, ValueError):
            lifetime = self.default_expires_in
        # A margin longer than the lifetime would refetch on every call; keep half then.
        margin = min(self.refresh_margin, lifetime / 2)
        return _Token(value=value, refresh_at=time.monotonic() + lifetime - margin)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _oauth_error(content: bytes) -> str:
    # RFC 6749 error codes ("invalid_client") are safe to show and say what to fix.
    payload = _json_or_none(content)
    code = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64:
        return f" ({code})"
    return ""


class HmacSignatureAuth(httpx.Auth):
    """Signs the request body: ``X-Webhook-Timestamp`` and ``X-Webhook-Signature``."""

    requires_request_body = True

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(signature_headers(request.content, self._secret))
        yield request

    def __repr__(self) -> str:
        return "HmacSignatureAuth(secret='***')"


def auth_for(settings: schema.Backend) -> httpx.Auth | None:
    """The httpx ``Auth`` for a backend's ``auth`` settings (None for ``type: none``).

    A relative ``token_url`` is joined to the backend's ``base_url``.
    """
    auth = settings.auth
    if isinstance(auth, schema.BearerAuth):
        return BearerTokenAuth(auth.token)
    if isinstance(auth, schema.ApiKeyAuth):
        return ApiKeyAuth(auth.key, header=auth.header, query_param=auth.query_param)
    if isinstance(auth, schema.OAuth2ClientCredentials):
        token_url = auth.token_url
        if "://" not in token_url:
            token_url = settings.base_url + "/" + token_url.lstrip("/")
        return OAuth2ClientCredentialsAuth(
            token_url,
            auth.client_id,
            auth.client_secret,
            scope=auth.scope,
            auth_method=auth.auth_method,
            refresh_margin=auth.refresh_margin,
        )
    if isinstance(auth, schema.HmacSignatureAuth):
        return HmacSignatureAuth(auth.secret)
    return None
