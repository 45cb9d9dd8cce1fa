"""HTTP routes of the demo core bank.

`create_app` is the factory tests use; `app_from_env` builds it from `BANK_*` variables.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote_plus

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .models import DepositRequest, TransferRequest
from .store import BankError, Store
from .webhooks import DEFAULT_WEBHOOK_SECRET, deliver

DEFAULT_CLIENT_ID = "intentbridge-demo"
DEFAULT_CLIENT_SECRET = "demo-secret"
DEFAULT_TOKEN_TTL = 3600
MAX_IDEMPOTENCY_KEY = 255

JsonList = list[dict[str, Any]]


def _same(given: str, expected: str) -> bool:
    # compare_digest keeps the check constant-time; bytes because it refuses non-ASCII str.
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is JSON `{"error": code, "detail": text}`."""

    @app.exception_handler(BankError)
    async def bank_error(request: Request, exc: BankError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            (".".join(str(part) for part in err.get("loc", ())), str(err.get("msg", "")))
            for err in exc.errors()
        ]
        return JSONResponse(
            {
                "error": "invalid_request",
                "detail": "; ".join(f"{loc}: {msg}" for loc, msg in problems),
                "errors": [{"loc": loc, "msg": msg} for loc, msg in problems],
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )


def create_app(
    db_path: str | Path,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    token_ttl: int = DEFAULT_TOKEN_TTL,
    customers: int = 0,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
) -> FastAPI:
    """Build the bank on the SQLite file `db_path` (created and seeded if new).

    `customers` adds load-test customers user0001..userN; `token_ttl` is in seconds.
    """
    store = Store(db_path)
    store.initialise(customers)

    app = FastAPI(title="Core Bank (demo)", version="1.0.0")
    app.state.store = store
    _install_error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/oauth/token")
    async def issue_token(request: Request) -> JSONResponse:
        # Parsed by hand so the bank needs no multipart/form dependency.
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)

        def field(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        credentials = _basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            credentials = (field("client_id") or "", field("client_secret") or "")
        given_id, given_secret = credentials
        if not (_same(given_id, client_id) and _same(given_secret, client_secret)):
            return JSONResponse(
                {"error": "invalid_client"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="corebank"'},
            )
        grant_type = field("grant_type")
        if not grant_type:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

        token = store.issue_token(client_id, token_ttl)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": token_ttl},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BankError(401, "invalid_token", "A bearer token is required")
        if not store.token_is_valid(token):
            raise BankError(401, "invalid_token", "The bearer token is invalid or has expired")

    api = APIRouter(dependencies=[Depends(require_token)])

    @api.get("/customers/{customer}/accounts")
    def list_accounts(customer: str) -> JsonList:
        return store.accounts(customer)

    @api.get("/customers/{customer}/accounts/{account_id}/transactions")
    def list_transactions(
        customer: str, account_id: str, limit: Annotated[int, Query(ge=1, le=100)] = 10
    ) -> JsonList:
        return store.transactions(customer, account_id, limit)

    @api.get("/customers/{customer}/payees")
    def list_payees(customer: str) -> JsonList:
        return store.payees(customer)

    @api.get("/customers/{customer}/transfers")
    def list_transfers(
        customer: str,
        idempotency_key: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JsonList:
        return store.transfers(customer, idempotency_key, limit)

    @api.get("/customers/{customer}/transfers/{transfer_id}")
    def get_transfer(customer: str, transfer_id: str) -> dict[str, Any]:
        return store.transfer(customer, transfer_id)

    @api.post("/customers/{customer}/transfers")
    def create_transfer(
        customer: str,
        body: TransferRequest,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        key = (idempotency_key or "").strip()
        if not key:
            raise BankError(
                400, "missing_idempotency_key", "The Idempotency-Key header is required"
            )
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise BankError(400, "invalid_idempotency_key", "Idempotency-Key is too long")
        status, content, replayed = store.create_transfer(customer, key, body)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(content, status_code=status, media_type="application/json", headers=headers)

    @api.post("/admin/deposits", status_code=201)
    def create_deposit(body: DepositRequest, background: BackgroundTasks) -> dict[str, Any]:
        event = store.deposit(body)
        if webhook_url:
            # After the response: a slow or dead receiver must not hold up the deposit.
            background.add_task(deliver, webhook_url, webhook_secret, event)
        return event

    app.include_router(api)
    return app


def app_from_env() -> FastAPI:
    """The app as configured by `BANK_*` environment variables (see README.md)."""
    env = os.environ
    return create_app(
        env.get("BANK_DB", "corebank.sqlite3"),
        client_id=env.get("BANK_CLIENT_ID", DEFAULT_CLIENT_ID),
        client_secret=env.get("BANK_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        token_ttl=int(env.get("BANK_TOKEN_TTL", DEFAULT_TOKEN_TTL)),
        customers=int(env.get("BANK_CUSTOMERS", "0") or 0),
        webhook_url=env.get("BANK_WEBHOOK_URL") or None,
        webhook_secret=env.get("BANK_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
    )
