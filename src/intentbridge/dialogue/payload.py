"""Button payloads: ``/intent`` or ``/intent{"entity": "value"}`` skip the NLU.

Rasa clients send these when a button is pressed, so a button means exactly what it
says. A payload only names an intent and entities; identity still comes from the
channel, so a payload cannot make the bot act for someone else.
"""

from __future__ import annotations

import json
import re

from intentbridge.types import Entity, Interpretation

_PAYLOAD = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(\{.*\})?$", re.DOTALL)


def parse_payload(text: str) -> Interpretation | None:
    """The interpretation a payload stands for, or None when ``text`` is not one."""
    match = _PAYLOAD.match(text.strip())
    if match is None:
        return None
    intent, raw = match.group(1), match.group(2)
    entities: list[Entity] = []
    if raw:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        for name, value in data.items():
            if isinstance(value, str | int | float | bool) or value is None:
                entities.append(Entity(str(name), value, 0, 0, str(value), extractor="payload"))
    return Interpretation(text=text, intent=intent, confidence=1.0, entities=tuple(entities))
