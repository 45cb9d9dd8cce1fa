"""Signed, best-effort webhook delivery for incoming-payment events."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

log = logging.getLogger("corebank.webhooks")

DEFAULT_WEBHOOK_SECRET = "demo-webhook-secret"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` over `"{timestamp}.{body}"`; binding the timestamp stops replays."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def deliver(url: str, secret: str, event: dict[str, Any], timeout: float = 3.0) -> bool:
    """POST the event once; a failure is logged, never raised (the deposit already happened)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign(secret, timestamp, body),
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        log.warning("webhook %s to %s failed: %s", event.get("id"), url, exc)
        return False
    if response.is_error:
        log.warning("webhook %s to %s got HTTP %s", event.get("id"), url, response.status_code)
        return False
    return True
