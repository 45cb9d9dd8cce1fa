"""A conversation stored as a turn leaves it when it stops between sending and recording."""

from __future__ import annotations

from decimal import Decimal

from intentbridge.conversation.state import Conversation, Frame
from intentbridge.stores import open_store
from intentbridge.types import Money


async def store_interrupted_transfer(store_url: str, idempotency_key: str) -> None:
    """alice's 12.00 EUR checking → savings transfer, status ``executing``, under the key."""
    conv = Conversation(id="rest:alice", user_id="alice")
    conv.frame = Frame(
        operation="transfer_money",
        params={
            "amount": Money(Decimal("12.00"), "EUR"),
            "from_account": "checking",
            "to_account": "savings",
        },
        resolved={"from_account": "acc-alice-chk", "to_account": "acc-alice-sav"},
        status="executing",
        idempotency_key=idempotency_key,
    )
    store = open_store(store_url)
    await store.open()
    await store.save_conversation(conv.id, conv.to_json())
    await store.close()
