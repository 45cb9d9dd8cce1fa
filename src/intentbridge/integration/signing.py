"""HMAC-SHA256 webhook signatures over ``f"{timestamp}.{body}"``, both ways.

Outgoing: an operation on a backend with ``auth: {type: hmac_signature, secret: …}``
is sent signed. Incoming: ``POST /webhooks/in/{source}`` checks the signature, the
timestamp's age and the event id before anything else happens.

>>> headers = signature_headers(b'{"id": "e1"}', "s3cret", now=1700000000)
>>> verify_signature(b'{"id": "e1"}', headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER],
...                  "s3cret", tolerance=300, now=1700000010)
"""

from __future__ import annotations

import hashlib
import hmac
import time

from intentbridge.errors import IntentbridgeError

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
_PREFIX = "sha256="


class SignatureError(IntentbridgeError):
    """An incoming webhook's signature or timestamp is missing, wrong or stale."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def signature_headers(body: bytes, secret: str, *, now: float | None = None) -> dict[str, str]:
    """The headers that sign ``body``: timestamp and signature."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(body, secret, timestamp)}


def verify_signature(
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    secret: str,
    *,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the body is signed with ``secret`` recently."""
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        raise SignatureError(
            f"timestamp is {abs(current - sent):.0f}s away from now (tolerance {tolerance:g}s)"
        )
    # compare in constant time so the signature cannot be guessed byte by byte
    if not hmac.compare_digest(sign(body, secret, sent), signature.strip()):
        raise SignatureError("signature does not match")
