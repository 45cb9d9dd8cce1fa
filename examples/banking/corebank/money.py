"""Money handling: amounts travel as decimal strings and are stored as integer cents."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Keeps every balance far inside SQLite's 64-bit integers.
MAX_AMOUNT = Decimal("1000000000.00")
CENT = Decimal("0.01")


def parse_amount(value: object) -> Decimal:
    """Accept a positive amount given as a string or a JSON number, with at most two places."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("amount must be a decimal string or a number")
    try:
        # str() first: a JSON number arrives as a float, and str() gives its shortest
        # decimal form (10.1 -> "10.1") rather than its binary expansion.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise ValueError("amount must be finite")
    if amount <= 0:
        raise ValueError("amount must be positive")
    if amount != amount.quantize(CENT):
        raise ValueError("amount may have at most two decimal places")
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount may not exceed {MAX_AMOUNT}")
    return amount.quantize(CENT)


def to_cents(amount: Decimal) -> int:
    return int(amount.quantize(CENT) * 100)


def format_cents(cents: int) -> str:
    """1250 -> "12.50", -5 -> "-0.05"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"
