"""A client that reads the sample bank's ledger, for assertions."""

from __future__ import annotations

from typing import Any

import httpx

CLIENT = ("intentbridge-demo", "demo-secret")


class Bank:
    """The sample bank on loopback, with a client that reads its ledger."""

    def __init__(self, url: str) -> None:
        self.url = url
        token = httpx.post(
            f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT
        ).json()["access_token"]
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

    def balances(self, customer: str) -> dict[str, str]:
        accounts = self.client.get(f"/customers/{customer}/accounts").json()
        return {a["name"]: a["balance"] for a in accounts}

    def transfers(self, customer: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.client.get(f"/customers/{customer}/transfers").json()
        return result
