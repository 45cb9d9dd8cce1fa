"""Request bodies. Responses are plain dicts built by the store, so they serialise exactly."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from .money import parse_amount

Amount = Annotated[Decimal, BeforeValidator(parse_amount)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TransferRequest(BaseModel):
    """Either an internal transfer (`to_account`) or a payment to a saved payee (`payee`)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    from_account: Ident
    to_account: Ident | None = None
    payee: Ident | None = None
    amount: Amount
    currency: Currency
    description: str | None = Field(default=None, max_length=140)

    @model_validator(mode="after")
    def _one_destination(self) -> Self:
        if (self.to_account is None) == (self.payee is None):
            raise ValueError("give exactly one of to_account or payee")
        return self

    def fingerprint(self) -> str:
        """Stable hash of the normalised body, so "10" and "10.00" count as the same request."""
        canonical = self.model_dump(mode="json")
        canonical["amount"] = str(self.amount)
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()


class DepositRequest(BaseModel):
    """An incoming payment from outside the bank (a demo/admin hook)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    customer: Ident
    account: Ident
    amount: Amount
    counterparty: str = Field(min_length=1, max_length=140)
    currency: Currency | None = None
    description: str | None = Field(default=None, max_length=140)
