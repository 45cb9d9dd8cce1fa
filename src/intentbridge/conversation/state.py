"""Per-sender conversation state and its JSON form.

The state is what survives between turns and across restarts: the frame being filled,
slots, the last completed operation (for "and savings?"), the reply to the last
money-moving call carried out (so a late "yes" is told it was done), recent turns,
and the ids of messages already handled (so a client's retry is not handled twice).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from intentbridge.types import Money

FrameStatus = Literal["filling", "confirming", "executing"]
STATE_VERSION = 1


@dataclass
class Frame:
    """The operation being filled in, with its collected parameters."""

    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    """Values as the user gave them, normalised (a ``Money``, a canonical name, a date)."""
    resolved: dict[str, Any] = field(default_factory=dict)
    """Values after lookup (an account id for the name "savings")."""
    status: FrameStatus = "filling"
    asking: str | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    confirm_digest: str | None = None
    idempotency_key: str | None = None

    def digest(self) -> str:
        """A short fingerprint of the exact parameters a confirmation was asked for."""
        blob = json.dumps(encode_value(self.params), sort_keys=True, separators=(",", ":"))
        blob += json.dumps(encode_value(self.resolved), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Turn:
    role: Literal["user", "bot"]
    text: str
    timestamp: float
    intent: str | None = None


@dataclass
class Conversation:
    """Everything the bot remembers about one sender."""

    id: str
    user_id: str
    frame: Frame | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    last_operation: str | None = None
    last_params: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    handled_messages: list[dict[str, Any]] = field(default_factory=list)
    """Recent message ids with the replies they got: a client's retry gets them again."""
    outbox: list[dict[str, Any]] = field(default_factory=list)
    turn_count: int = 0
    completed_reply: str | None = None
    """The reply that reported the money-moving call last carried out, until another
    request starts: a "yes" that comes after it is answered with it, never acted on
    again."""

    def remember_turn(self, turn: Turn, keep: int) -> None:
        self.turns.append(turn)
        if len(self.turns) > keep:
            del self.turns[: len(self.turns) - keep]

    def mark_handled(self, message_id: str, replies: list[dict[str, Any]], keep: int = 50) -> None:
        self.handled_messages.append({"id": message_id, "replies": replies})
        if len(self.handled_messages) > keep:
            del self.handled_messages[: len(self.handled_messages) - keep]

    def replies_for(self, message_id: str) -> list[dict[str, Any]] | None:
        """The replies already given to ``message_id``, or None when it is new."""
        for handled in self.handled_messages:
            if handled.get("id") == message_id:
                replies: list[dict[str, Any]] = handled.get("replies", [])
                return replies
        return None

    def notify(self, text: str, *, now: float, message_id: str) -> None:
        """Queue a proactive message for delivery on the next turn or outbox read."""
        if any(m.get("id") == message_id for m in self.outbox):
            return
        self.outbox.append({"id": message_id, "text": text, "timestamp": now})

    def take_outbox(self) -> list[dict[str, Any]]:
        messages, self.outbox = self.outbox, []
        return messages

    def to_json(self) -> dict[str, Any]:
        frame = None
        if self.frame is not None:
            f = self.frame
            frame = {
                "operation": f.operation,
                "params": encode_value(f.params),
                "resolved": encode_value(f.resolved),
                "status": f.status,
                "asking": f.asking,
                "attempts": f.attempts,
                "confirm_digest": f.confirm_digest,
                "idempotency_key": f.idempotency_key,
            }
        return {
            "version": STATE_VERSION,
            "id": self.id,
            "user_id": self.user_id,
            "frame": frame,
            "slots": encode_value(self.slots),
            "last_operation": self.last_operation,
            "last_params": encode_value(self.last_params),
            "turns": [
                {"role": t.role, "text": t.text, "timestamp": t.timestamp, "intent": t.intent}
                for t in self.turns
            ],
            "handled_messages": self.handled_messages,
            "outbox": self.outbox,
            "turn_count": self.turn_count,
            "completed_reply": self.completed_reply,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conversation:
        raw = data.get("frame")
        frame = None
        if raw is not None:
            frame = Frame(
                operation=raw["operation"],
                params=decode_value(raw.get("params", {})),
                resolved=decode_value(raw.get("resolved", {})),
                status=raw.get("status", "filling"),
                asking=raw.get("asking"),
                attempts=dict(raw.get("attempts", {})),
                confirm_digest=raw.get("confirm_digest"),
                idempotency_key=raw.get("idempotency_key"),
            )
        return cls(
            id=data["id"],
            user_id=data["user_id"],
            frame=frame,
            slots=decode_value(data.get("slots", {})),
            last_operation=data.get("last_operation"),
            last_params=decode_value(data.get("last_params", {})),
            turns=[Turn(**t) for t in data.get("turns", [])],
            handled_messages=[h for h in data.get("handled_messages", []) if isinstance(h, dict)],
            outbox=list(data.get("outbox", [])),
            turn_count=int(data.get("turn_count", 0)),
            completed_reply=_str_or_none(data.get("completed_reply")),
        )


def _str_or_none(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def encode_value(value: Any) -> Any:
    """JSON-safe form of parameter values, keeping Money, Decimal and dates typed."""
    if isinstance(value, Money):
        return {"$money": str(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if "$money" in value:
            return Money(Decimal(value["$money"]), value.get("currency"))
        if "$decimal" in value:
            return Decimal(value["$decimal"])
        if "$datetime" in value:
            return dt.datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value
